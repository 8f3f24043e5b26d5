"""What an edit of a link changes: the edit against the link as it is saved now, for
sending only what differs, and for the conflict view when someone changed it first."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from kurz.links.models import Fallbacks, LinkRead, LinkUpdate, LinkVariant
from kurz.web.link_form import rule_json

_FALLBACKS: Final = {"not_yet": "before", "expired": "expired", "used_up": "used up"}


@dataclass(frozen=True, slots=True)
class Compared:
    """One field of a link, in the edit and as saved now."""

    name: str
    label: str
    mine: str
    theirs: str

    @property
    def differs(self) -> bool:
        return self.mine != self.theirs


# Each of LinkUpdate's fields, as the comparison names it.
_COMPARED: Final = {
    "url": "Target URL",
    "starts_at": "Valid from",
    "expires_at": "Expires at",
    "max_visits": "Visit cap",
    "redirect_status": "Redirect status",
    "forward_query": "Query forwarding",
    "tags": "Tags",
    "password": "Password",
    "rules": "Targeting rules",
    "variants": "A/B variants",
    "variant_choice": "Variant choice",
    "fallbacks": "Fallbacks",
    "og_title": "Preview title",
    "og_description": "Preview description",
    "og_image": "Preview image",
}


def _utc(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _fallbacks(fallbacks: Fallbacks | None) -> dict[str, str] | None:
    kept = {} if fallbacks is None else fallbacks.model_dump(exclude_none=True)
    return kept or None


def _variants(variants: Sequence[LinkVariant] | None) -> list[tuple[str, int]] | None:
    return None if not variants else [(variant.url, variant.weight) for variant in variants]


def _state(link: LinkRead) -> dict[str, Any]:
    """What a link's edit can change, in one comparable form."""
    return {
        "url": link.url,
        "starts_at": _utc(link.valid_from),
        "expires_at": _utc(link.expires_at),
        "max_visits": link.max_visits,
        "redirect_status": link.redirect_status,
        "forward_query": link.forward_query,
        "tags": sorted(link.tags),
        "password": "set" if link.password_protected else None,
        "rules": [rule_json(rule) for rule in link.rules],
        "variants": _variants(link.variants),
        "variant_choice": link.variant_choice if link.variants else None,
        "fallbacks": _fallbacks(link.fallbacks),
        "og_title": link.og_title,
        "og_description": link.og_description,
        "og_image": link.og_image,
    }


def _edited(update: LinkUpdate, link: LinkRead) -> dict[str, Any]:
    """The state `link` would be in after `update` (a new password: "new")."""
    state = _state(link)
    for name in update.model_fields_set:
        value = getattr(update, name)
        if name in {"starts_at", "expires_at"}:
            value = _utc(value)
        elif name == "tags":
            value = sorted(value or ())
        elif name == "rules":
            value = [rule_json(rule) for rule in value or ()]
        elif name == "variants":
            value = _variants(value)
        elif name == "fallbacks":
            value = _fallbacks(value)
        elif name == "password":
            value = None if value is None else "new"
        state[name] = value
    if state["variants"] is None:
        state["variant_choice"] = None
    elif "variant_choice" not in update.model_fields_set:
        state["variant_choice"] = state["variant_choice"] or "random"
    return state


def changes(update: LinkUpdate, link: LinkRead) -> LinkUpdate:
    """`update` with only the fields that differ from `link` as saved: an edit sends
    what it changes (an expired link keeps its past expiry when only its title changes)."""
    mine, theirs = _edited(update, link), _state(link)
    changed = {name for name in update.model_fields_set if mine[name] != theirs[name]}
    if "variants" in changed and update.variants is not None:
        # New variants are chosen among as the form says.
        changed |= {"variant_choice"} & update.model_fields_set
    return LinkUpdate.model_construct(changed, **{name: getattr(update, name) for name in changed})


def _text(name: str, value: Any) -> str:
    """A field's value as the conflict view shows it."""
    if value is None or value == []:
        return {"password": "none", "max_visits": "no cap"}.get(name, "—")
    if name == "password":
        return "a new one" if value == "new" else "set"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name == "tags":
        return ", ".join(value)
    if name == "rules":
        return json.dumps(value, ensure_ascii=False)
    if name == "variants":
        return "; ".join(f"{url} (weight {weight})" for url, weight in value)
    if name == "fallbacks":
        return "; ".join(f"{_FALLBACKS[key]}: {url}" for key, url in value.items())
    return str(value)


def compared(update: LinkUpdate, link: LinkRead) -> list[Compared]:
    """Every field of the edit beside the link as saved now."""
    mine, theirs = _edited(update, link), _state(link)
    return [
        Compared(name, label, _text(name, mine[name]), _text(name, theirs[name]))
        for name, label in _COMPARED.items()
    ]
