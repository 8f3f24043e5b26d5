"""The link form of the web app, for creating and editing a link: its fields as typed,
read back into the API's own LinkCreate or LinkUpdate, the API's errors put beside the
fields they name, and an edit compared with the link as it is saved now."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import zip_longest
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError

from kurz.errors import Problem
from kurz.links.conditions import TargetingRule
from kurz.links.models import LinkRead
from kurz.links.variants import MAX_VARIANTS
from kurz.web.forms import Posted, as_problem, beside_fields

M = TypeVar("M", bound=BaseModel)

# The form's one-value fields, by name (each input's name and id), and their labels.
LABELS: Final = {
    "url": "Target URL",
    "alias": "Custom code",
    "domain": "Domain",
    "tags": "Tags",
    "redirect_status": "Redirect status",
    "forward_query": "Forward the query string",
    "valid_from": "Valid from (UTC)",
    "expires_at": "Expires at (UTC)",
    "max_visits": "Visit cap",
    "password": "Password",
    "remove_password": "Remove the password",
    "rules": "Rules (JSON)",
    "variants": "A/B variants",
    "variant_choice": "How a visit's variant is chosen",
    "fallback_not_yet": "Before it is valid",
    "fallback_expired": "After it expires",
    "fallback_used_up": "When its visits are used up",
    "og_title": "Title",
    "og_description": "Description",
    "og_image": "Image URL",
}
FALLBACKS: Final = ("not_yet", "expired", "used_up")
# The <details> sections: opened when a field of theirs holds a value or an error.
SECTIONS: Final = {
    "schedule": ("valid_from", "expires_at", "max_visits"),
    "password": ("password", "remove_password"),
    "rules": ("rules",),
    "variants": ("variants",),
    "fallbacks": tuple(f"fallback_{name}" for name in FALLBACKS),
    "preview": ("og_title", "og_description", "og_image"),
}
# Rows offered for variants when none are typed (create), and at most.
EMPTY_ROWS = 3
MAX_ROWS = MAX_VARIANTS + 5
RULES_EXAMPLE: Final = """[
  {"url": "https://apps.apple.com/app/id1",
   "conditions": [{"type": "device", "in": ["ios"]}]},
  {"url": "https://example.com/de", "match": "any",
   "conditions": [{"type": "language", "in": ["de"]},
                  {"type": "country", "in": ["DE", "AT", "CH"]}]}
]"""
# What a datetime-local input sends (seconds optional), perhaps with an offset typed in.
_WHEN = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(?P<zone>Z|[+-]\d{2}:\d{2})?"
)
_NUMBER = re.compile(r"[+-]?\d{1,40}")


@dataclass(slots=True)
class LinkForm:
    """The form as a page shows it: each field's text, the variant rows, and errors."""

    values: dict[str, str]
    rows: list[tuple[str, str]] = field(default_factory=list)
    # Errors by the id of the field they are shown beside; those no field shows.
    errors: dict[str, str] = field(default_factory=dict)
    others: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls) -> LinkForm:
        return cls({"redirect_status": "302", "variant_choice": "random"})

    def value(self, name: str) -> str:
        for prefix, part in (("variant_url_", 0), ("variant_weight_", 1)):
            if name.startswith(prefix):
                at = int(name.removeprefix(prefix))
                return self.rows[at][part] if at < len(self.rows) else ""
        return self.values.get(name, "")

    def label(self, name: str) -> str:
        return label_of(name)

    def shown_rows(self) -> list[tuple[str, str]]:
        """The variant rows: those typed, then empty ones (three on an empty form, else one)."""
        blank = EMPTY_ROWS if not self.rows else 1
        return (self.rows + [("", "")] * blank)[: max(MAX_VARIANTS, len(self.rows))]

    def opened(self, section: str) -> bool:
        names = SECTIONS[section]
        if any(name in self.errors or self.value(name).strip() for name in names):
            return True
        if section == "variants":
            return bool(self.rows) or any(key.startswith("variant") for key in self.errors)
        return False

    def summary(self) -> list[tuple[str, str, str]]:
        """(field id, label, message) for each error shown beside a field."""
        return [(name, label_of(name), message) for name, message in self.errors.items()]

    def retype_password(self) -> bool:
        """A password was typed: the page asks for it again (a page never shows it)."""
        return bool(self.value("password"))


def label_of(name: str) -> str:
    for prefix, what in (("variant_url_", "URL"), ("variant_weight_", "weight")):
        if name.startswith(prefix):
            return f"Variant {int(name.removeprefix(prefix)) + 1} {what}"
    return LABELS.get(name, name)


def typed(posted: Posted) -> LinkForm:
    """The form as it was posted (its blank variant rows left out)."""
    values = {name: posted.first(name) for name in LABELS if name != "variants"}
    pairs = zip_longest(posted.all("variant_url"), posted.all("variant_weight"), fillvalue="")
    rows = [(url, weight) for url, weight in pairs if url.strip() or weight.strip()]
    return LinkForm(values, rows[:MAX_ROWS])


def _local(when: datetime | None) -> str:
    """A datetime-local input's value for `when`, in UTC."""
    if when is None:
        return ""
    utc = when.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S" if utc.second else "%Y-%m-%dT%H:%M")


def rules_text(rules: Sequence[TargetingRule]) -> str:
    """Rules as the API spells them, one rule to a few lines."""
    if not rules:
        return ""
    return json.dumps([rule_json(rule) for rule in rules], indent=2, ensure_ascii=False)


def rule_json(rule: TargetingRule) -> dict[str, Any]:
    return rule.model_dump(mode="json", by_alias=True, exclude_none=True)


def filled(link: LinkRead) -> LinkForm:
    """The edit form of `link`, as it is saved."""
    values = {
        "url": link.url,
        "alias": link.code if link.alias else "",
        "domain": link.domain or "",
        "tags": ", ".join(link.tags),
        "redirect_status": str(link.redirect_status),
        "forward_query": "on" if link.forward_query else "",
        "valid_from": _local(link.valid_from),
        "expires_at": _local(link.expires_at),
        "max_visits": "" if link.max_visits is None else str(link.max_visits),
        "rules": rules_text(link.rules),
        "variant_choice": link.variant_choice or "random",
        "og_title": link.og_title or "",
        "og_description": link.og_description or "",
        "og_image": link.og_image or "",
    }
    for name in FALLBACKS:
        values[f"fallback_{name}"] = getattr(link.fallbacks, name) or ""
    rows = [(variant.url, str(variant.weight)) for variant in link.variants or ()]
    return LinkForm(values, rows)


# Reading the form into the API's body


def _when(text: str, name: str, early: dict[str, str]) -> str | None:
    """A datetime-local value as RFC 3339 in UTC (the form says its times are UTC)."""
    text = text.strip()
    if not text:
        return None
    found = _WHEN.fullmatch(text)
    if found is None:
        early[name] = "Give a date and time, such as 2030-01-31T09:00 (UTC)."
        return None
    if len(text) == len("2030-01-31T09:00"):
        text += ":00"
    return text if found["zone"] else text + "Z"


def _number(text: str) -> int | str | None:
    """An integer as typed; other text as it is, for the model to refuse by name."""
    text = text.strip()
    if not text:
        return None
    return int(text) if _NUMBER.fullmatch(text) else text


def _rules(text: str, early: dict[str, str]) -> Any:
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        early["rules"] = f"This is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
    except (ValueError, RecursionError):
        early["rules"] = "This JSON could not be read (a number too long, or nesting too deep)."
    return None


def _body(form: LinkForm, *, update: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """The API's JSON body for the form (an empty field left out, or null on an edit, which
    clears it), and the errors found before the model is asked (a date, the rules' JSON)."""
    v = form.value
    early: dict[str, str] = {}
    body: dict[str, Any] = {"url": v("url").strip()}
    if not update:
        for name in ("alias", "domain"):
            if v(name).strip():
                body[name] = v(name).strip()
    fallbacks = {name: v(f"fallback_{name}").strip() for name in FALLBACKS}
    variants = [{"url": url.strip(), "weight": _number(weight)} for url, weight in form.rows]
    optional: dict[str, Any] = {
        "valid_from": _when(v("valid_from"), "valid_from", early),
        "expires_at": _when(v("expires_at"), "expires_at", early),
        "max_visits": _number(v("max_visits")),
        "fallbacks": {name: url for name, url in fallbacks.items() if url} or None,
        "rules": _rules(v("rules"), early),
        "variants": variants or None,
        "og_title": v("og_title").strip() or None,
        "og_description": v("og_description").strip() or None,
        "og_image": v("og_image").strip() or None,
    }
    for name, value in optional.items():
        if (value is not None or update) and name not in early:
            body[name] = value
    tags = [tag.strip() for tag in v("tags").split(",") if tag.strip()]
    if tags or update:
        body["tags"] = tags
    body["redirect_status"] = _number(v("redirect_status")) or 302
    body["forward_query"] = bool(v("forward_query"))
    if variants:
        body["variant_choice"] = v("variant_choice") or "random"
    if v("password"):
        body["password"] = v("password")
    elif update and v("remove_password"):
        body["password"] = None
    return body, early


def create_body(form: LinkForm) -> tuple[dict[str, Any], dict[str, str]]:
    return _body(form, update=False)


def update_body(form: LinkForm) -> tuple[dict[str, Any], dict[str, str]]:
    return _body(form, update=True)


def checked(model: type[M], found: tuple[dict[str, Any], dict[str, str]]) -> M:
    """`model` from a body; else the API's 422 for it, with the errors found before."""
    body, early = found
    errors: list[dict[str, Any]] = [
        {"field": name, "in": "body", "message": message} for name, message in early.items()
    ]
    try:
        made = model.model_validate(body)
    except ValidationError as exc:
        errors += [dict(error) for error in as_problem(exc).errors or ()]
    else:
        if not errors:
            return made
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    raise Problem(422, "validation-error", "Validation Error", detail, errors=errors)


# The API's errors beside the fields


def _aliases(form: LinkForm) -> dict[str, str]:
    """The form field each of the API's field names is shown beside."""
    aliases = {f"fallbacks.{name}": f"fallback_{name}" for name in FALLBACKS}
    aliases |= {"starts_at": "valid_from", "fallbacks": "fallback_not_yet"}
    for row in range(len(form.rows)):
        aliases[f"variants.{row}.url"] = f"variant_url_{row}"
        aliases[f"variants.{row}.weight"] = f"variant_weight_{row}"
    return aliases


def _shown(form: LinkForm) -> set[str]:
    rows = range(len(form.shown_rows()))
    return set(LABELS) | {f"variant_{part}_{i}" for i in rows for part in ("url", "weight")}


def _beside(field_name: str, aliases: Mapping[str, str]) -> str:
    """As kurz.web.forms.beside_fields names a field."""
    first = field_name.split(".")[0]
    return aliases.get(field_name) or aliases.get(first) or first


def with_errors(form: LinkForm, problem: Problem) -> LinkForm:
    """The form again, with the problem's errors beside the fields they name, and
    what no field shows (a refusal of the whole link) above them."""
    aliases, shown = _aliases(form), _shown(form)
    errors = beside_fields(problem, shown, aliases=aliases)
    if problem.slug == "alias-taken":
        errors["alias"] = problem.detail
    nested = [e for e in problem.errors or () if str(e.get("field", "")).startswith("rules.")]
    if nested and "rules" in errors:
        # The rules are one textarea: say which rule, condition and value.
        errors["rules"] = f"{where_in_rules(str(nested[0]['field']))}: {nested[0]['message']}"
    others = [
        f"{error['field']}: {error['message']}"
        for error in problem.errors or ()
        if _beside(str(error.get("field", "")), aliases) not in shown
    ]
    if not errors and not others:
        others = [problem.detail]
    return LinkForm(form.values, form.rows, errors, others)


def where_in_rules(path: str) -> str:
    """The API's name of a place in the rules, in words: `rules.1.conditions.0.country.in.2`
    is "Rule 2, condition 1, in value 3"."""
    words: list[str] = []
    parts = path.split(".")
    i = 0
    while i < len(parts):
        name, after = parts[i], parts[i + 1] if i + 1 < len(parts) else ""
        if after.isdigit():
            counted = {"rules": "rule", "conditions": "condition"}.get(name, f"{name} value")
            words.append(f"{counted} {int(after) + 1}")
            i += 2
            # A condition's errors name its type next; the JSON says it already.
            if name == "conditions" and i < len(parts) and not parts[i].isdigit():
                i += 1
        else:
            words.append(name)
            i += 1
    said = ", ".join(words)
    return said[:1].upper() + said[1:]


# The fields "Keep mine" posts again (the password is typed again, never sent back).
KEPT: Final = tuple(name for name in LABELS if name not in {"password", "variants"})
