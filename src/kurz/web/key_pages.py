"""The API keys page (/_/keys): the viewer's keys, a form to make one (its secret shown
on the answer page only), and revoking one after a confirmation page. The same use
cases as /api/v1/keys (kurz.auth.keys); another user's key is a 404 page."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Final

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from kurz.auth.keys import Keys, key_not_found
from kurz.auth.models import (
    DEFAULT_KEY_SCOPES,
    MAX_ID,
    ApiKeyCreate,
    ApiKeyRead,
    Scope,
    in_order,
)
from kurz.auth.views import AccessDep
from kurz.clock import utcnow
from kurz.deps import part
from kurz.errors import Problem
from kurz.web.forms import as_problem, beside_fields, posted
from kurz.web.render import render
from kurz.web.viewer import PageRoute, Viewer, ViewerDep

router = APIRouter(include_in_schema=False, route_class=PageRoute)
KeysDep = Annotated[Keys, part("keys")]
PAGE: Final = "/_/keys"

# What each scope lets a key do, as the form says it.
SCOPE_HINTS: Final[dict[Scope, str]] = {
    "links:read": "read your links",
    "links:write": "create, change and delete your links",
    "stats:read": "read your links' click statistics",
    "webhooks": "manage your webhooks, which are sent your links' changes and clicks",
    "metrics:read": "read /metrics (for Prometheus)",
    "proxy": "resolve links for an edge proxy, on a visitor's behalf (gRPC)",
    "admin": "manage users, domains, everyone's keys and links",
}
# The expiry choices besides a date: days from now.
EXPIRY_DAYS: Final = (30, 90, 365)


@dataclass(slots=True)
class KeyForm:
    """The create form as it was sent (or its defaults), and its errors by field."""

    name: str = ""
    scopes: list[str] = field(default_factory=lambda: list[str](in_order(DEFAULT_KEY_SCOPES)))
    expires: str = "never"
    expires_on: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    # A refusal that names no field.
    error: str = ""


def _own_key_id(text: str) -> int:
    """The id in a path; anything that cannot be one names no key."""
    if not text.isdigit() or not 1 <= int(text) <= MAX_ID:
        raise key_not_found(text[:32])
    return int(text)


async def _own_key(keys: Keys, viewer: Viewer, text: str) -> ApiKeyRead:
    """The viewer's key with the id `text`; another's (an admin sees them) is not found
    here either: this page is about one's own keys."""
    key = await keys.get(key_id=_own_key_id(text), by=viewer.principal)
    if key.user != viewer.principal.user_id:
        raise key_not_found(key.id)
    return key


def _state(key: ApiKeyRead, now: datetime) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


async def _keys_page(
    request: Request,
    viewer: Viewer,
    keys: Keys,
    form: KeyForm,
    *,
    status: int = 200,
    notice: str = "",
) -> Response:
    now = utcnow(keys.clock)
    mine = await keys.list_(by=viewer.principal, user=viewer.principal.user_id)
    # Newest first, the live ones before those that no longer work.
    mine.sort(key=lambda key: (_state(key, now) != "active", -key.id))
    return render(
        request,
        "keys/list.html",
        status,
        title="API keys",
        nav="keys",
        wide=True,
        keys=[(key, _state(key, now)) for key in mine],
        form=form,
        scopes=[(scope, SCOPE_HINTS[scope]) for scope in in_order(viewer.principal.scopes)],
        expiry_days=EXPIRY_DAYS,
        today=now.date().isoformat(),
        notice=notice,
    )


@router.get(PAGE)
async def keys_page(
    request: Request,
    viewer: ViewerDep,
    keys: KeysDep,
    revoked: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    notice = ""
    if revoked is not None:
        mine = await keys.list_(by=viewer.principal, user=viewer.principal.user_id)
        names = [key.name for key in mine if key.id == revoked and key.revoked_at is not None]
        if names:
            notice = f"The key “{names[0]}” is revoked: it is refused from now on."
    return await _keys_page(request, viewer, keys, KeyForm(), notice=notice)


def _expiry(form: KeyForm, now: datetime) -> datetime | None:
    """When the key the form asks for expires: never, in so many days, or at the end
    of the chosen day (UTC). Fills in `form.errors` for a choice that is no choice."""
    if form.expires == "never":
        return None
    if form.expires.isdigit() and int(form.expires) in EXPIRY_DAYS:
        return now + timedelta(days=int(form.expires))
    if form.expires != "date":
        form.errors["expires"] = "Choose one of the offered expiries."
        return None
    try:
        day = date.fromisoformat(form.expires_on)
    except ValueError:
        form.errors["expires_on"] = "Enter a date, as YYYY-MM-DD."
        return None
    # The key works through the whole of that day.
    return datetime.combine(day + timedelta(days=1), time(), UTC)


# Where the use case's field errors are shown on the form.
_FIELDS: Final = ("name", "scopes", "expires_on")
_ALIASES: Final[Mapping[str, str]] = {"expires_at": "expires_on"}


@router.post(PAGE)
async def create_key(
    request: Request, viewer: ViewerDep, keys: KeysDep, access: AccessDep
) -> Response:
    sent = await posted(request)
    form = KeyForm(
        name=sent.first("name").strip(),
        scopes=sent.all("scopes"),
        expires=sent.first("expires", "never"),
        expires_on=sent.first("expires_on").strip(),
    )
    expires_at = _expiry(form, utcnow(keys.clock))
    if form.errors:
        return await _keys_page(request, viewer, keys, form, status=422)
    try:
        key_in = ApiKeyCreate.model_validate(
            {"name": form.name, "scopes": form.scopes, "expires_at": expires_at}
        )
        created = await keys.create(
            key_in=key_in, by=viewer.principal, ip=access.limits.client_ip(request.scope)
        )
    except (ValidationError, Problem) as exc:
        problem = as_problem(exc) if isinstance(exc, ValidationError) else exc
        if problem.status not in {403, 422}:
            raise
        form.errors = beside_fields(problem, _FIELDS, aliases=_ALIASES)
        if problem.slug.startswith("scope-exceeds"):
            form.errors["scopes"] = problem.detail
        if not form.errors:
            form.error = problem.detail
        return await _keys_page(request, viewer, keys, form, status=problem.status)
    return render(
        request,
        "keys/created.html",
        201,
        title="Your new API key",
        nav="keys",
        key=created,
        secret=created.secret,
    )


@router.get(PAGE + "/{key_id}/revoke")
async def revoke_page(request: Request, key_id: str, viewer: ViewerDep, keys: KeysDep) -> Response:
    key = await _own_key(keys, viewer, key_id)
    return render(
        request, "keys/revoke.html", title="Revoke an API key", nav="keys", key=key,
        state=_state(key, utcnow(keys.clock)),
    )  # fmt: skip


@router.post(PAGE + "/{key_id}/revoke")
async def revoke_key(
    request: Request, key_id: str, viewer: ViewerDep, keys: KeysDep, access: AccessDep
) -> Response:
    key = await _own_key(keys, viewer, key_id)
    await keys.revoke(key_id=key.id, by=viewer.principal, ip=access.limits.client_ip(request.scope))
    return RedirectResponse(f"{PAGE}?revoked={key.id}", 303)
