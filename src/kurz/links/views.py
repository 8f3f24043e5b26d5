"""REST endpoints for links: parse, call the service, render."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from kurz.auth.views import LinksRead, LinksWrite
from kurz.config import Settings
from kurz.deps import part
from kurz.errors import Problem
from kurz.idempotency import REPLAYED, Done, ReplayedProblem, key_for
from kurz.links.models import MAX_TAGS, LinkCreate, LinkPagination, LinkRead, LinkUpdate
from kurz.links.preconditions import parse_if_match
from kurz.links.queries import Versions, etag
from kurz.links.search import MAX_QUERY, Sort
from kurz.links.service import Links
from kurz.openapi import (
    AUTHENTICATED,
    NOT_FOUND,
    TOO_LARGE,
    answer,
    needs_scope,
    problem,
    required_header,
    responses,
)

READS, WRITES = needs_scope("links:read"), needs_scope("links:write")

PREFIX = "/api/v1/links"
router = APIRouter(prefix=PREFIX, tags=["links"])


_IF_MATCH = (
    "The ETag the change is based on, from a GET or an earlier write (or `*`: whatever "
    "the link's version)."
)
# PATCH documents If-Match as required, but reads it as optional: its absence is the
# 428 update_link answers, not FastAPI's 422.
_REQUIRED_IF_MATCH = {"parameters": [required_header("if-match", _IF_MATCH)]}
IfMatch = Annotated[str | None, Header(include_in_schema=False)]
DeleteIfMatch = Annotated[
    str | None,
    Header(
        description="Delete only this version (the link's ETag); without If-Match the "
        "delete is unconditional."
    ),
]

LinksDep = Annotated[Links, part("links")]
SettingsDep = Annotated[Settings, part("settings")]

_STALE = problem("If-Match does not match: another writer changed the link", "ETag")


async def _idempotency_key(
    request: Request,
    settings: SettingsDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            description='A Structured Field string, e.g. "8e03978e-40d5-43e8-bc93-6894a57f9324". '
            "A retry with the same key and body gets the first response again, with "
            "`Idempotent-Replayed: true`; the key is kept for KURZ_IDEMPOTENCY_TTL "
            "(24 hours by default).",
        ),
    ] = None,
) -> str | None:
    # A PATCH is already safe to retry under If-Match, so only a POST can require a key.
    required = settings.idempotency_required and request.method == "POST"
    return key_for(request.headers.getlist("idempotency-key"), required=required)


KeyDep = Annotated[str | None, Depends(_idempotency_key)]
# The host a per-link route's link answers on (any spelling); absent: the default domain.
DomainQuery = Annotated[
    str | None,
    Query(
        max_length=300,
        description="The link's domain (a host); absent: the default domain.",
    ),
]


def _rendered(done: Done[LinkRead], status: int, *, location: str | None = None) -> Response:
    """A link as a write answers it, with its ETag, saying so when it is a replay.
    `location`: the default domain's host, for a Location naming the new link."""
    link = done.value
    headers = {"ETag": etag(link.version)}
    if location is not None:
        on_default = link.domain in (None, location)
        query = "" if on_default else f"?domain={link.domain}"
        headers["Location"] = f"{PREFIX}/{link.code}{query}"
    if done.replayed:
        headers[REPLAYED] = "true"
    return Response(link.model_dump_json().encode(), status, headers, media_type="application/json")


def _said_replayed(problem: ReplayedProblem) -> ReplayedProblem:
    """A refusal answered from the record, saying so as a replayed success does."""
    problem.headers[REPLAYED] = "true"
    return problem


@router.post(
    "",
    status_code=201,
    operation_id="createLink",
    summary="Shorten a URL",
    response_model=LinkRead,
    responses=responses(
        {
            201: answer("The new link", "Location", "ETag"),
            400: problem(
                "Malformed JSON or Content-Length, or a malformed Idempotency-Key (or "
                "none, where KURZ_IDEMPOTENCY_REQUIRED asks for one)"
            ),
            409: problem(
                "The alias is taken, or a request with this Idempotency-Key is in flight",
                "Retry-After",
            ),
            422: problem(
                "A field failed validation, or the Idempotency-Key was used with another body"
            ),
        },
        TOO_LARGE,
        WRITES,
        AUTHENTICATED,
        limited=True,
        replayed=(201, 409, 422),
    ),
)
async def create_link(
    link_in: LinkCreate, principal: LinksWrite, links: LinksDep, key: KeyDep
) -> Response:
    try:
        done = await links.create(principal=principal, link_in=link_in, key=key)
    except ReplayedProblem as problem:
        raise _said_replayed(problem) from None
    return _rendered(done, 201, location=links.default_host)


@router.get(
    "",
    operation_id="listLinks",
    summary="List and search links, newest first unless sorted otherwise",
    responses=responses(
        {
            200: answer("A page of links"),
            422: problem(
                "A malformed limit, cursor, tag, q or sort, or a cursor of another search"
            ),
        },
        READS,
        AUTHENTICATED,
        limited=True,
    ),
)
async def list_links(
    principal: LinksRead,
    links: LinksDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[
        str | None,
        Query(
            max_length=200,
            description="A previous page's `next_cursor`, from the same q, tags, domain "
            "and sort (another search's is a 422).",
        ),
    ] = None,
    tag: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_TAGS,
            description="Only links carrying this tag; repeated, only links carrying every one.",
        ),
    ] = None,
    domain: Annotated[
        str | None, Query(max_length=300, description="Only links on this domain (a host).")
    ] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=MAX_QUERY,
            description="Only links whose code, URL, title (og_title) or a tag contains "
            "this text, ignoring case; `%`, `_` and quotes are plain characters.",
        ),
    ] = None,
    sort: Annotated[
        Sort,
        Query(
            description="`newest` first (the default), `oldest` first, or by `code` "
            "(A to Z; on PostgreSQL in the database's collation)."
        ),
    ] = "newest",
) -> LinkPagination:
    return await links.list_(
        principal=principal,
        limit=limit,
        cursor=cursor,
        tags=tag or (),
        domain=domain,
        q=q,
        sort=sort,
    )


@router.get(
    "/{code}",
    operation_id="getLink",
    summary="Get a link",
    responses=responses(
        {200: answer("The link", "ETag")}, NOT_FOUND, READS, AUTHENTICATED, limited=True
    ),
)
async def get_link(
    code: str,
    principal: LinksRead,
    links: LinksDep,
    response: Response,
    domain: DomainQuery = None,
) -> LinkRead:
    link = await links.get(principal=principal, code=code, domain=domain)
    response.headers["ETag"] = etag(link.version)
    return link


@router.patch(
    "/{code}",
    operation_id="updateLink",
    summary="Change a link (requires If-Match)",
    response_model=LinkRead,
    openapi_extra=_REQUIRED_IF_MATCH,
    responses=responses(
        {
            200: answer("The changed link", "ETag"),
            400: problem("Malformed JSON, Content-Length, If-Match or Idempotency-Key"),
            409: problem("A request with this Idempotency-Key is in flight", "Retry-After"),
            412: _STALE,
            422: problem(
                "A field failed validation, or the Idempotency-Key was used with another "
                "body or If-Match"
            ),
            428: problem("If-Match is missing"),
        },
        NOT_FOUND,
        TOO_LARGE,
        WRITES,
        AUTHENTICATED,
        limited=True,
        replayed=(200, 404, 412, 422),
    ),
)
async def update_link(
    code: str,
    link_in: LinkUpdate,
    principal: LinksWrite,
    links: LinksDep,
    key: KeyDep,
    if_match: IfMatch = None,
    domain: DomainQuery = None,
) -> Response:
    if if_match is None:
        raise Problem(
            428,
            "precondition-required",
            "Precondition Required",
            "Send If-Match with the link's current ETag, so that a concurrent change "
            "is not silently overwritten.",
        )
    try:
        done = await links.update(
            principal=principal,
            code=code,
            link_in=link_in,
            versions=parse_if_match(if_match),
            key=key,
            domain=domain,
        )
    except ReplayedProblem as problem:
        raise _said_replayed(problem) from None
    return _rendered(done, 200)


@router.delete(
    "/{code}",
    status_code=204,
    operation_id="deleteLink",
    summary="Delete a link; its code is never reused",
    responses=responses(
        {
            204: answer("Deleted"),
            400: problem("A malformed If-Match"),
            412: _STALE,
        },
        NOT_FOUND,
        WRITES,
        AUTHENTICATED,
        limited=True,
    ),
)
async def delete_link(
    code: str,
    principal: LinksWrite,
    links: LinksDep,
    if_match: DeleteIfMatch = None,
    domain: DomainQuery = None,
) -> Response:
    versions = Versions.any() if if_match is None else parse_if_match(if_match)
    await links.delete(principal=principal, code=code, versions=versions, domain=domain)
    return Response(status_code=204)
