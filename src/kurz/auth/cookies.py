"""Signed in by cookie: the session cookie, its CSRF token, and the principal it gives.

Why the CSRF token is a hash of the session id, and why that is safe, is
kurz.accounts.session_store.csrf_token's docstring (and docs/accounts.md).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response

from kurz.accounts.session_store import SessionUser, csrf_matches
from kurz.accounts.sessions import Sessions
from kurz.auth.models import ROLE_SCOPES, Principal, Role
from kurz.auth.service import unauthorized
from kurz.config import Settings
from kurz.errors import Problem
from kurz.limits import ServiceLimits, too_many_requests

COOKIE = "kurz_session"
# Over https the __Host- prefix makes browsers insist on Secure, Path=/ and no Domain,
# so that no sibling subdomain can set or shadow the cookie.
HOST_COOKIE = "__Host-kurz_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
# Methods that change nothing: the only ones a session cookie may make without a token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORMS = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
# Where the request's live session is left for the routes that show it.
SCOPE_KEY = "kurz.session"


def secure(settings: Settings) -> bool:
    return settings.base_url.startswith("https://")


def cookie_name(settings: Settings) -> str:
    return HOST_COOKIE if secure(settings) else COOKIE


def set_cookie(response: Response, settings: Settings, session_id: str) -> None:
    """Send the session's cookie: HttpOnly, so no script reads it; SameSite=Lax, so that
    other sites' requests carry it only on top-level GETs; Secure over https."""
    response.set_cookie(
        cookie_name(settings),
        session_id,
        max_age=int(settings.session_absolute_ttl),
        path="/",
        secure=secure(settings),
        httponly=True,
        samesite="lax",
    )


def clear_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        cookie_name(settings), path="/", secure=secure(settings), httponly=True, samesite="lax"
    )


def csrf_failed(detail: str) -> Problem:
    return Problem(403, "csrf-failed", "CSRF Token Missing or Stale", detail)


async def sent_csrf_token(request: Request) -> str | None:
    """The token the request carries: the X-CSRF-Token header, or a form's csrf_token."""
    token = request.headers.get(CSRF_HEADER)
    if token is not None:
        return token
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type not in _FORMS:
        return None
    # Read now, before the route: FastAPI has already read the body, which Starlette
    # keeps, so the route still gets it.
    field = (await request.form()).get(CSRF_FIELD)
    return field if isinstance(field, str) else None


async def session_principal(
    request: Request, session_id: str, *, sessions: Sessions, limits: ServiceLimits
) -> Principal:
    """The user signed in with `session_id`, checked before the route does anything:
    a live session, the user's API limit, and the session's CSRF token on a request
    that may change something."""
    found = await sessions.find(session_id)
    if found is None:
        raise unauthorized(
            "The session has ended (signed out, expired, or its user disabled): sign in again."
        )
    role = cast(Role, found.role)
    principal = Principal(
        user_id=found.user_id,
        role=role,
        scopes=ROLE_SCOPES[role],
        name=found.email,
        session=found.id_hash,
    )
    scope: MutableMapping[str, Any] = request.scope
    decision = await limits.check(limits.api, principal.subject, scope)
    if decision is not None and not decision.allowed:
        raise too_many_requests(decision)
    if request.method not in SAFE_METHODS:
        token = await sent_csrf_token(request)
        if token is None:
            raise csrf_failed(
                f"A request with a session cookie that may change something needs the "
                f"session's CSRF token, in the {CSRF_HEADER} header or a form's "
                f"{CSRF_FIELD} field (GET /api/v1/session gives it)."
            )
        if not csrf_matches(session_id, token):
            raise csrf_failed(
                "The CSRF token is not this session's (a token from an earlier sign-in?): "
                "GET /api/v1/session gives the current one."
            )
    scope[SCOPE_KEY] = found
    return principal


def current_session(request: Request) -> SessionUser | None:
    """The session the request was authenticated with (session_principal), if any."""
    found = request.scope.get(SCOPE_KEY)
    return found if isinstance(found, SessionUser) else None
