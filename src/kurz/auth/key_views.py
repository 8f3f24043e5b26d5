"""REST endpoints for API keys: parse, call kurz.auth.keys, render."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from kurz.auth.keys import Keys, key_not_found
from kurz.auth.models import MAX_ID, ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyRead
from kurz.auth.views import AccessDep, PrincipalDep
from kurz.deps import part
from kurz.openapi import AUTHENTICATED, TOO_LARGE, answer, problem, responses

PREFIX = "/api/v1/keys"
router = APIRouter(prefix=PREFIX, tags=["keys"])

KeysDep = Annotated[Keys, part("keys")]
KeyId = Annotated[str, Path(description="The key's id.", examples=["7"])]

_KEY_NOT_FOUND = {404: problem("No such key, or not the caller's")}
# Keys need no scope of their own: a user manages their keys with any of theirs, and
# through a key only within that key's scopes (docs/accounts.md).
_EXCEEDS = problem(
    "The scopes are beyond the user's role (`scope-exceeds-role`), or beyond the key "
    "the call was made with (`scope-exceeds-key`)"
)


def _key_id(text: str) -> int:
    """The id in a path; anything that cannot be one names no key."""
    if not text.isdigit() or not 1 <= int(text) <= MAX_ID:
        raise key_not_found(text[:32])
    return int(text)


@router.get(
    "",
    operation_id="listKeys",
    summary="List API keys: the caller's; an admin's: everyone's, or one user's",
    responses=responses(
        {
            200: answer("The keys, oldest first (never their secrets)"),
            404: problem("No such user, or not the caller"),
            422: problem("A malformed user id"),
        },
        AUTHENTICATED,
        limited=True,
    ),
)
async def list_keys(
    principal: PrincipalDep,
    keys: KeysDep,
    user: Annotated[
        int | None,
        Query(ge=1, le=MAX_ID, description="Only this user's keys (an admin may name anyone)."),
    ] = None,
) -> ApiKeyList:
    return ApiKeyList(items=await keys.list_(by=principal, user=user))


@router.post(
    "",
    status_code=201,
    operation_id="createKey",
    summary="Create an API key; its secret is in this answer only",
    response_model=ApiKeyCreated,
    responses=responses(
        {
            201: answer("The new key, with its secret", "Location"),
            400: problem("Malformed JSON or Content-Length"),
            403: _EXCEEDS,
            404: problem("No such user, or not one the caller manages"),
            422: problem("A field failed validation, or `expires_at` is not in the future"),
        },
        TOO_LARGE,
        AUTHENTICATED,
        limited=True,
    ),
)
async def create_key(
    key_in: ApiKeyCreate,
    principal: PrincipalDep,
    keys: KeysDep,
    access: AccessDep,
    request: Request,
) -> Response:
    # No Idempotency-Key: a replay would have to keep the secret to send it again.
    created = await keys.create(
        key_in=key_in, by=principal, ip=access.limits.client_ip(request.scope)
    )
    return Response(
        created.model_dump_json().encode(),
        201,
        {"Location": f"{PREFIX}/{created.id}"},
        media_type="application/json",
    )


@router.get(
    "/{key_id}",
    operation_id="getKey",
    summary="Get an API key (never its secret)",
    responses=responses({200: answer("The key")}, _KEY_NOT_FOUND, AUTHENTICATED, limited=True),
)
async def get_key(key_id: KeyId, principal: PrincipalDep, keys: KeysDep) -> ApiKeyRead:
    return await keys.get(key_id=_key_id(key_id), by=principal)


@router.delete(
    "/{key_id}",
    status_code=204,
    operation_id="revokeKey",
    summary="Revoke an API key (again: nothing changes)",
    responses=responses(
        {
            204: answer("Revoked"),
            403: problem(
                "Through a key: the key to revoke has a scope the calling key lacks "
                "(`scope-exceeds-key`)"
            ),
        },
        _KEY_NOT_FOUND,
        AUTHENTICATED,
        limited=True,
    ),
)
async def revoke_key(
    key_id: KeyId, principal: PrincipalDep, keys: KeysDep, access: AccessDep, request: Request
) -> Response:
    await keys.revoke(
        key_id=_key_id(key_id), by=principal, ip=access.limits.client_ip(request.scope)
    )
    return Response(status_code=204)
