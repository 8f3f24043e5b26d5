"""The Bearer-key dependency every /api/ route takes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kurz.auth.models import Principal
from kurz.auth.service import Access
from kurz.deps import part

AccessDep = Annotated[Access, part("access")]
_bearer = HTTPBearer(auto_error=False, description="An API key from `kurz keys create`.")


async def get_principal(
    request: Request,
    access: AccessDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    return await access.authorize(
        None if credentials is None else credentials.credentials,
        client_ip=lambda: access.limits.client_ip(request.scope),
        scope=request.scope,
    )


PrincipalDep = Annotated[Principal, Depends(get_principal)]
