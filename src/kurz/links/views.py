"""REST endpoints for links: parse, call the service, render."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from kurz.auth.views import PrincipalDep
from kurz.clock import utcnow
from kurz.errors import Problem, invalid, not_found
from kurz.links import service
from kurz.links.codes import CODE_PATTERN
from kurz.links.models import LinkCreate, LinkPagination, LinkRead, LinkUpdate
from kurz.links.service import Versions, etag
from kurz.links.urls import validate_tag
from kurz.state import StateDep

PREFIX = "/api/v1/links"
router = APIRouter(prefix=PREFIX, tags=["links"])

_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
_AUTH: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing, unknown or revoked API key", **_PROBLEM}
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such link, or not the caller's", **_PROBLEM}
}
_INVALID: dict[int | str, dict[str, Any]] = {
    422: {"description": "A field failed validation", **_PROBLEM}
}
# A strong entity tag as kurz issues them: the link's version in quotes.
_ETAG = re.compile(r'"(\d{1,9})"')

IfMatch = Annotated[
    str | None,
    Header(description="The ETag the change is based on, from a GET or an earlier write."),
]


def _checked_code(code: str) -> str:
    # Whatever cannot be a code is answered before it reaches SQL.
    if not CODE_PATTERN.fullmatch(code):
        raise not_found(f"No link with code '{code[:64]}'.")
    return code


def parse_if_match(value: str) -> Versions:
    """The versions an If-Match header accepts (RFC 9110 13.1.1, strong comparison)."""
    if value.strip() == "*":
        return Versions.any()
    allowed: set[int] = set()
    for part in value.split(","):
        tag = part.strip()
        if tag.startswith("W/"):
            continue  # A weak tag never matches under strong comparison.
        match = _ETAG.fullmatch(tag)
        if match is None:
            raise Problem(
                400,
                "malformed-if-match",
                "Malformed If-Match",
                'If-Match must hold entity tags as kurz sends them in ETag, e.g. "3".',
            )
        allowed.add(int(match.group(1)))
    return Versions(frozenset(allowed))


@router.post(
    "",
    status_code=201,
    summary="Shorten a URL",
    responses={409: {"description": "The alias is taken", **_PROBLEM}, **_AUTH, **_INVALID},
)
async def create_link(
    link_in: LinkCreate, principal: PrincipalDep, state: StateDep, response: Response
) -> LinkRead:
    async with state.db.write() as conn:
        link = await service.create(
            conn=conn,
            link_in=link_in,
            owner=principal,
            now=utcnow(state.clock),
            base_url=state.settings.base_url,
        )
    response.headers["Location"] = f"{PREFIX}/{link.code}"
    response.headers["ETag"] = etag(link.version)
    return link


@router.get("", summary="List links, newest first", responses={**_AUTH, **_INVALID})
async def list_links(
    principal: PrincipalDep,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
) -> LinkPagination:
    if tag is not None:
        try:
            tag = validate_tag(tag)
        except ValueError as exc:
            raise invalid("tag", str(exc), location="query") from None
    async with state.db.read() as conn:
        return await service.list_(
            conn=conn,
            principal=principal,
            limit=limit,
            cursor=cursor,
            tag=tag,
            base_url=state.settings.base_url,
        )


@router.get("/{code}", summary="Get a link", responses={**_AUTH, **_NOT_FOUND})
async def get_link(
    code: str, principal: PrincipalDep, state: StateDep, response: Response
) -> LinkRead:
    async with state.db.read() as conn:
        link = await service.get(
            conn=conn,
            code=_checked_code(code),
            principal=principal,
            base_url=state.settings.base_url,
        )
    response.headers["ETag"] = etag(link.version)
    return link


@router.patch(
    "/{code}",
    summary="Change a link (requires If-Match)",
    responses={
        412: {"description": "If-Match is stale: another writer changed the link", **_PROBLEM},
        428: {"description": "If-Match is missing", **_PROBLEM},
        **_AUTH,
        **_NOT_FOUND,
        **_INVALID,
    },
)
async def update_link(
    code: str,
    link_in: LinkUpdate,
    principal: PrincipalDep,
    state: StateDep,
    response: Response,
    if_match: IfMatch = None,
) -> LinkRead:
    if if_match is None:
        raise Problem(
            428,
            "precondition-required",
            "Precondition Required",
            "Send If-Match with the link's current ETag, so that a concurrent change "
            "is not silently overwritten.",
        )
    async with state.db.write() as conn:
        link = await service.update(
            conn=conn,
            code=_checked_code(code),
            principal=principal,
            link_in=link_in,
            versions=parse_if_match(if_match),
            now=utcnow(state.clock),
            base_url=state.settings.base_url,
        )
    state.redirector.forget(code)
    response.headers["ETag"] = etag(link.version)
    return link


@router.delete(
    "/{code}",
    status_code=204,
    summary="Delete a link; its code is never reused",
    responses={412: {"description": "If-Match is stale", **_PROBLEM}, **_AUTH, **_NOT_FOUND},
)
async def delete_link(
    code: str, principal: PrincipalDep, state: StateDep, if_match: IfMatch = None
) -> Response:
    async with state.db.write() as conn:
        await service.delete(
            conn=conn,
            code=_checked_code(code),
            principal=principal,
            versions=Versions.any() if if_match is None else parse_if_match(if_match),
            now=utcnow(state.clock),
        )
    state.redirector.forget(code)
    return Response(status_code=204)
