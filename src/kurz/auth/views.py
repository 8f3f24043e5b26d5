"""The Bearer-key dependency every /api/ route takes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kurz.auth import service
from kurz.auth.models import Principal
from kurz.errors import Problem
from kurz.state import StateDep

_bearer = HTTPBearer(auto_error=False, description="An API key from `kurz keys create`.")


def _unauthorized(detail: str) -> Problem:
    return Problem(
        401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"}
    )


async def get_principal(
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise _unauthorized("Send an API key as `Authorization: Bearer <key>`.")
    async with state.db.read() as conn:
        principal = await service.authenticate(conn=conn, secret=credentials.credentials)
    if principal is None:
        raise _unauthorized("The API key is unknown or revoked.")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
