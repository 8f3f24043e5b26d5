"""REST endpoints for signing in: the session, and the caller's own account."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from kurz.accounts.passwords import MAX_LENGTH
from kurz.accounts.session_store import csrf_token
from kurz.auth.cookies import (
    CSRF_HEADER,
    clear_cookie,
    cookie_name,
    current_session,
    set_cookie,
)
from kurz.auth.models import Role, Scope, in_order
from kurz.auth.service import unauthorized
from kurz.auth.views import AccessDep, PrincipalDep, SessionsDep, SettingsDep
from kurz.errors import Problem
from kurz.openapi import AUTHENTICATED, TOO_LARGE, answer, problem, responses

router = APIRouter(prefix="/api/v1", tags=["sessions"])


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=1_000)
    password: str = Field(max_length=MAX_LENGTH)


class AccountRead(BaseModel):
    id: int
    email: str
    display_name: str
    role: Role


class SessionRead(BaseModel):
    user: AccountRead
    csrf_token: str = Field(
        description=f"Send it as `{CSRF_HEADER}` (or a form's `csrf_token`) with every "
        "request that may change something."
    )
    expires_at: datetime = Field(
        description="When the session ends whatever happens; it ends sooner after "
        "KURZ_SESSION_IDLE_TTL without a request."
    )


class MeRead(AccountRead):
    scopes: list[Scope] = Field(description="What this caller may do.")
    key: int | None = Field(description="The API key called with; null with a session.")


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(max_length=MAX_LENGTH)
    new_password: str


def not_a_session() -> Problem:
    # A 400, not a 404: the route exists, and a script holding a key learns at once
    # that it asked the wrong question, rather than that something is missing.
    return Problem(
        400,
        "not-a-session",
        "Not a Session",
        "Called with an API key: only a signed-in browser has a session. "
        "GET /api/v1/me says whom the key acts for.",
    )


def _ip(request: Request, access: AccessDep) -> str:
    return access.limits.client_ip(request.scope)


_NOT_A_SESSION = {400: problem("Called with an API key, which has no session (`not-a-session`)")}


@router.post(
    "/session",
    status_code=204,
    operation_id="signIn",
    summary="Sign in: a session cookie for this client",
    responses=responses(
        {
            204: answer(
                "Signed in: a new session's cookie, and its CSRF token", "Set-Cookie", CSRF_HEADER
            ),
            400: problem("Malformed JSON or Content-Length"),
            401: problem("The email or password is wrong, or the account cannot sign in"),
            422: problem("A field is missing or not a string"),
            429: problem(
                "Too many failed sign-ins from this IP (`signin-ip`) or for this account "
                "(`signin-account`)",
                "Retry-After",
            ),
            503: problem("The database does not answer; nothing was changed", "Retry-After"),
        },
        TOO_LARGE,
    ),
)
async def sign_in(
    sign_in: SignIn,
    request: Request,
    access: AccessDep,
    sessions: SessionsDep,
    settings: SettingsDep,
) -> Response:
    session_id, _ = await sessions.sign_in(
        sign_in.email,
        sign_in.password,
        ip=_ip(request, access),
        user_agent=request.headers.get("user-agent"),
        replacing=request.cookies.get(cookie_name(settings)),
    )
    response = Response(status_code=204, headers={CSRF_HEADER: csrf_token(session_id)})
    set_cookie(response, settings, session_id)
    return response


@router.get(
    "/session",
    operation_id="getSession",
    summary="The signed-in session: its user, CSRF token and end",
    responses=responses({200: answer("The session")}, _NOT_A_SESSION, AUTHENTICATED, limited=True),
)
async def read_session(
    request: Request, principal: PrincipalDep, settings: SettingsDep
) -> SessionRead:
    found = current_session(request)
    if found is None:
        raise not_a_session()
    return SessionRead(
        user=AccountRead(
            id=found.user_id,
            email=found.email,
            display_name=found.display_name,
            role=principal.role,
        ),
        csrf_token=csrf_token(request.cookies[cookie_name(settings)]),
        expires_at=found.expires_at,
    )


@router.delete(
    "/session",
    status_code=204,
    operation_id="signOut",
    summary="Sign out: end this session",
    responses=responses(
        {204: answer("Signed out; the cookie is cleared", "Set-Cookie")},
        _NOT_A_SESSION,
        AUTHENTICATED,
        limited=True,
    ),
)
async def sign_out(
    request: Request,
    principal: PrincipalDep,
    access: AccessDep,
    sessions: SessionsDep,
    settings: SettingsDep,
) -> Response:
    if current_session(request) is None:
        raise not_a_session()
    await sessions.sign_out(request.cookies[cookie_name(settings)], ip=_ip(request, access))
    response = Response(status_code=204)
    clear_cookie(response, settings)
    return response


@router.get(
    "/me",
    operation_id="getMe",
    summary="The caller's own user",
    responses=responses(
        {200: answer("The user a key or session acts for")}, AUTHENTICATED, limited=True
    ),
)
async def read_me(principal: PrincipalDep, sessions: SessionsDep) -> MeRead:
    user = await sessions.user(principal.user_id)
    if user is None:
        # Deleted between the key or session check and this read.
        raise unauthorized("The caller's user no longer exists.")
    return MeRead(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=principal.role,
        scopes=in_order(principal.scopes),
        key=principal.key_id,
    )


@router.put(
    "/me/password",
    status_code=204,
    operation_id="changePassword",
    summary="Change the caller's password; every session of theirs ends",
    responses=responses(
        {
            204: answer(
                "Changed, and every session of the user ended; called with a session, "
                "a new one's cookie and CSRF token",
                "Set-Cookie",
                CSRF_HEADER,
            ),
            400: problem("Malformed JSON or Content-Length"),
            422: problem("The current password is wrong, or the new one is too short or too long"),
        },
        TOO_LARGE,
        AUTHENTICATED,
        limited=True,
    ),
)
async def change_password(
    change: PasswordChange,
    request: Request,
    principal: PrincipalDep,
    access: AccessDep,
    sessions: SessionsDep,
    settings: SettingsDep,
) -> Response:
    by_session = current_session(request) is not None
    fresh = await sessions.change_password(
        principal.user_id,
        change.current_password,
        change.new_password,
        ip=_ip(request, access),
        user_agent=request.headers.get("user-agent"),
        session_id=request.cookies[cookie_name(settings)] if by_session else None,
        actor_key_id=principal.key_id,
    )
    response = Response(status_code=204)
    if fresh is not None:
        session_id, _ = fresh
        response.headers[CSRF_HEADER] = csrf_token(session_id)
        set_cookie(response, settings, session_id)
    return response


@router.delete(
    "/me/sessions",
    status_code=204,
    operation_id="signOutEverywhere",
    summary="Sign out everywhere: end every session of the caller's user",
    responses=responses(
        {204: answer("Every session ended; this one's cookie is cleared", "Set-Cookie")},
        AUTHENTICATED,
        limited=True,
    ),
)
async def sign_out_everywhere(
    request: Request,
    principal: PrincipalDep,
    access: AccessDep,
    sessions: SessionsDep,
    settings: SettingsDep,
) -> Response:
    await sessions.end_everywhere(
        principal.user_id, ip=_ip(request, access), actor_key_id=principal.key_id
    )
    response = Response(status_code=204)
    if current_session(request) is not None:
        clear_cookie(response, settings)
    return response
