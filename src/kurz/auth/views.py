"""The Bearer-key dependency every /api/ route takes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kurz.auth import service
from kurz.auth.models import Principal
from kurz.errors import Problem
from kurz.limits import too_many_requests
from kurz.state import StateDep

_bearer = HTTPBearer(auto_error=False, description="An API key from `kurz keys create`.")


def _unauthorized(detail: str) -> Problem:
    return Problem(
        401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"}
    )


async def get_principal(
    request: Request,
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller's key; counts the call against its API limit, or a failure against its IP."""
    if credentials is None:
        raise _unauthorized("Send an API key as `Authorization: Bearer <key>`.")
    async with state.db.read() as conn:
        principal = await service.authenticate(conn=conn, secret=credentials.credentials)
    limits = state.limits
    if principal is None:
        # Wrong keys count per client IP, so guessing is throttled before any key works.
        failed = await limits.check(
            limits.auth_fail, limits.client_ip(request.scope), request.scope
        )
        if failed is not None and not failed.allowed:
            raise too_many_requests(failed)
        raise _unauthorized("The API key is unknown or revoked.")
    decision = await limits.check(limits.api, str(principal.key_id), request.scope)
    if decision is not None and not decision.allowed:
        raise too_many_requests(decision)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
