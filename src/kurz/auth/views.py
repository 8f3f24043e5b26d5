"""The dependencies every /api/ route takes: who is calling, and with what scope."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kurz.accounts.sessions import Sessions
from kurz.auth.cookies import cookie_name, session_principal
from kurz.auth.models import Principal, Scope
from kurz.auth.service import Access, require, unauthorized
from kurz.config import Settings
from kurz.deps import part

AccessDep = Annotated[Access, part("access")]
SessionsDep = Annotated[Sessions, part("sessions")]
SettingsDep = Annotated[Settings, part("settings")]
_bearer = HTTPBearer(auto_error=False, description="An API key from `kurz keys create`.")


async def get_principal(
    request: Request,
    access: AccessDep,
    sessions: SessionsDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller: by API key when one is sent, else by session cookie (kurz.auth.cookies)."""
    if credentials is None:
        session_id = request.cookies.get(cookie_name(settings))
        if session_id is None:
            raise unauthorized(
                "Send an API key as `Authorization: Bearer <key>`, or sign in "
                "(POST /api/v1/session) for a session cookie."
            )
        return await session_principal(request, session_id, sessions=sessions, limits=access.limits)
    return await access.authorize(
        credentials.credentials,
        client_ip=lambda: access.limits.client_ip(request.scope),
        scope=request.scope,
    )


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def scoped(scope: Scope) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the caller, if it has `scope`; else 403 insufficient-scope."""

    async def check(principal: PrincipalDep) -> Principal:
        return require(principal, scope)

    check.__name__ = f"scope_{scope.replace(':', '_')}"
    return check


LinksRead = Annotated[Principal, Depends(scoped("links:read"))]
LinksWrite = Annotated[Principal, Depends(scoped("links:write"))]
StatsRead = Annotated[Principal, Depends(scoped("stats:read"))]
WebhooksScope = Annotated[Principal, Depends(scoped("webhooks"))]
MetricsRead = Annotated[Principal, Depends(scoped("metrics:read"))]
Admin = Annotated[Principal, Depends(scoped("admin"))]
