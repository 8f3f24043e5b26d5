"""REST endpoints for links: parse, call the service, render."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from kurz.auth.views import PrincipalDep
from kurz.errors import (
    AUTH_RESPONSES,
    NOT_FOUND_RESPONSES,
    Problem,
    problem_responses,
)
from kurz.idempotency import Keyed, keyed_request
from kurz.links import operations
from kurz.links.models import LinkCreate, LinkPagination, LinkRead, LinkUpdate
from kurz.links.preconditions import parse_if_match
from kurz.links.service import Versions, etag
from kurz.links.urls import MAX_TAG_LENGTH
from kurz.state import StateDep

PREFIX = operations.PREFIX
router = APIRouter(prefix=PREFIX, tags=["links"])

_INVALID = problem_responses({422: "A field failed validation"})

IfMatch = Annotated[
    str | None,
    Header(description="The ETag the change is based on, from a GET or an earlier write."),
]


_KEYED = problem_responses(
    {
        400: "The Idempotency-Key is malformed (or required and missing)",
        409: "The alias is taken, or the Idempotency-Key is in use",
        422: "A field failed validation, or the Idempotency-Key was used with another body",
    }
)


async def _idempotency_key(
    request: Request,
    principal: PrincipalDep,
    state: StateDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            description='A Structured Field string, e.g. "8e03978e-40d5-43e8-bc93-6894a57f9324". '
            "A retry with the same key and body gets the first response again, with "
            "`Idempotent-Replayed: true`; the key is kept for KURZ_IDEMPOTENCY_TTL "
            "(24 hours by default).",
        ),
    ] = None,
) -> Keyed | None:
    # A PATCH is already safe to retry under If-Match, so only a POST can require a key.
    required = state.settings.idempotency_required and request.method == "POST"
    extra = (request.headers.get("if-match", ""),) if request.method == "PATCH" else ()
    return await keyed_request(
        request, operations.caller_of(principal), required=required, extra=extra
    )


KeyedDep = Annotated[Keyed | None, Depends(_idempotency_key)]


@router.post(
    "",
    status_code=201,
    summary="Shorten a URL",
    response_model=LinkRead,
    responses={**AUTH_RESPONSES, **_KEYED},
)
async def create_link(
    link_in: LinkCreate, principal: PrincipalDep, state: StateDep, keyed: KeyedDep
) -> Response:
    stored = await operations.create(state, principal=principal, link_in=link_in, keyed=keyed)
    return stored.response()


@router.get("", summary="List links, newest first", responses={**AUTH_RESPONSES, **_INVALID})
async def list_links(
    principal: PrincipalDep,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    tag: Annotated[str | None, Query(max_length=MAX_TAG_LENGTH)] = None,
) -> LinkPagination:
    return await operations.list_(state, principal=principal, limit=limit, cursor=cursor, tag=tag)


@router.get("/{code}", summary="Get a link", responses={**AUTH_RESPONSES, **NOT_FOUND_RESPONSES})
async def get_link(
    code: str, principal: PrincipalDep, state: StateDep, response: Response
) -> LinkRead:
    link = await operations.get(state, principal=principal, code=code)
    response.headers["ETag"] = etag(link.version)
    return link


@router.patch(
    "/{code}",
    summary="Change a link (requires If-Match)",
    response_model=LinkRead,
    responses={
        **problem_responses(
            {
                412: "If-Match is stale: another writer changed the link",
                428: "If-Match is missing",
            }
        ),
        **AUTH_RESPONSES,
        **NOT_FOUND_RESPONSES,
        **_KEYED,
    },
)
async def update_link(
    code: str,
    link_in: LinkUpdate,
    principal: PrincipalDep,
    state: StateDep,
    keyed: KeyedDep,
    if_match: IfMatch = None,
) -> Response:
    if if_match is None:
        raise Problem(
            428,
            "precondition-required",
            "Precondition Required",
            "Send If-Match with the link's current ETag, so that a concurrent change "
            "is not silently overwritten.",
        )
    stored = await operations.update(
        state,
        principal=principal,
        code=code,
        link_in=link_in,
        versions=parse_if_match(if_match),
        keyed=keyed,
    )
    return stored.response()


@router.delete(
    "/{code}",
    status_code=204,
    summary="Delete a link; its code is never reused",
    responses={
        **problem_responses({412: "If-Match is stale"}),
        **AUTH_RESPONSES,
        **NOT_FOUND_RESPONSES,
    },
)
async def delete_link(
    code: str, principal: PrincipalDep, state: StateDep, if_match: IfMatch = None
) -> Response:
    versions = Versions.any() if if_match is None else parse_if_match(if_match)
    await operations.delete(state, principal=principal, code=code, versions=versions)
    return Response(status_code=204)
