"""REST endpoints for links: parse, call the service, render."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from kurz.auth.views import LinksRead, LinksWrite
from kurz.config import Settings
from kurz.deps import part
from kurz.errors import Problem
from kurz.idempotency import REPLAYED, Done, ReplayedProblem, key_for
from kurz.links.batch import Batches, parsed
from kurz.links.models import (
    MAX_BATCH,
    MAX_TAGS,
    LinkBatchCreate,
    LinkBatchResults,
    LinkCreate,
    LinkPagination,
    LinkRead,
    LinkUpdate,
)
from kurz.links.preconditions import parse_if_match
from kurz.links.qr import (
    DEFAULT_MARGIN,
    DEFAULT_SIZE,
    MAX_MARGIN,
    MAX_SIZE,
    MIN_SIZE,
    Ecc,
    Format,
    QrOptions,
)
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
# Many links in one request: the only route with a body limit of its own (BodyLimit).
BATCH = f"{PREFIX}/batch"
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
BatchesDep = Annotated[Batches, part("batches")]
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


@router.post(
    "/batch",
    operation_id="createLinks",
    summary=f"Shorten many URLs at once (up to {MAX_BATCH:,})",
    response_model=LinkBatchResults,
    responses=responses(
        {
            200: answer(
                "One result per link asked for, in the same order: the link made (as "
                "createLink answers it), or the problem that refused it"
            ),
            400: problem(
                "Malformed JSON or Content-Length, or a malformed Idempotency-Key (or "
                "none, where KURZ_IDEMPOTENCY_REQUIRED asks for one)"
            ),
            409: problem("A request with this Idempotency-Key is in flight", "Retry-After"),
            413: problem("The body is over KURZ_MAX_BATCH_BODY_BYTES"),
            422: problem(
                f'The body is not `{{"links": [...]}}` with 1 to {MAX_BATCH:,} links, '
                "or the Idempotency-Key was used with another body"
            ),
        },
        WRITES,
        AUTHENTICATED,
        limited=True,
        replayed=(200,),
    ),
)
async def create_links(
    batch: LinkBatchCreate, principal: LinksWrite, batches: BatchesDep, key: KeyDep
) -> Response:
    """Each link is made or refused as `POST /api/v1/links` would make or refuse it
    alone; one refused never stops the others (docs/batch.md)."""
    items = [parsed(item) for item in batch.links]
    done = await batches.create_many(principal=principal, links=items, key=key)
    headers = {REPLAYED: "true"} if done.replayed else None
    return Response(done.text.encode(), 200, headers, media_type="application/json")


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


# A link's short URL never changes for its code, but the link may be deleted: a browser
# asks again after a few minutes, and a 304 costs it nothing.
_QR_CACHE_CONTROL = "private, max-age=300"
_QR_HEADERS: dict[str, Any] = {
    "ETag": {
        "description": 'A hash of the image, e.g. `"5f0c..."`: send it as If-None-Match '
        "for a 304 while the image is the same.",
        "schema": {"type": "string"},
    },
    "Cache-Control": {
        "description": f"`{_QR_CACHE_CONTROL}`: the link may be deleted.",
        "schema": {"type": "string"},
    },
}
_QR_IMAGE: dict[str, Any] = {
    "description": "The QR code of the link's short URL",
    "headers": {
        **_QR_HEADERS,
        "Content-Disposition": {
            "description": '`inline; filename="CODE.svg"` (or `.png`); `attachment` '
            "with `download=true`.",
            "schema": {"type": "string"},
        },
    },
    "content": {
        "image/svg+xml": {"schema": {"type": "string"}},
        "image/png": {"schema": {"type": "string", "format": "binary"}},
    },
}
_QR_NOT_MODIFIED: dict[str, Any] = {
    "description": "If-None-Match names the image's ETag: the copy the client has is current",
    "headers": _QR_HEADERS,
}
# Opened on its own, the SVG is a document: it may load and run nothing.
_QR_SAFE = {"Content-Security-Policy": "default-src 'none'", "X-Content-Type-Options": "nosniff"}


def _none_match(if_none_match: str | None, digest: str) -> bool:
    """Whether If-None-Match names the tag `"digest"` (weak comparison, RFC 9110 13.1.2)
    or is `*`; a malformed one names nothing."""
    if if_none_match is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or f'"{digest}"' in tags


@router.get(
    "/{code}/qr",
    operation_id="getLinkQrCode",
    summary="Get a link's QR code, as SVG or PNG",
    response_class=Response,
    responses=responses(
        {
            200: _QR_IMAGE,
            304: _QR_NOT_MODIFIED,
            422: problem("A format, size, margin, ecc or download out of range"),
        },
        NOT_FOUND,
        READS,
        AUTHENTICATED,
        limited=True,
    ),
)
async def get_link_qr_code(
    code: str,
    principal: LinksRead,
    links: LinksDep,
    image_format: Annotated[
        Format, Query(alias="format", description="`svg` (scalable) or `png`.")
    ] = "svg",
    size: Annotated[
        int,
        Query(
            ge=MIN_SIZE,
            le=MAX_SIZE,
            description="The image's width and height in pixels. A PNG gets whole pixels "
            "per module: the widest image not over `size`.",
        ),
    ] = DEFAULT_SIZE,
    margin: Annotated[
        int, Query(ge=0, le=MAX_MARGIN, description="The quiet zone around it, in modules.")
    ] = DEFAULT_MARGIN,
    ecc: Annotated[
        Ecc,
        Query(description="Error correction: L (7%), M (15%), Q (25%) or H (30%) restorable."),
    ] = "M",
    download: Annotated[
        bool, Query(description="Whether a browser saves the image rather than shows it.")
    ] = False,
    if_none_match: Annotated[
        str | None, Header(description="The ETag of a copy the client holds.")
    ] = None,
    domain: DomainQuery = None,
) -> Response:
    options = QrOptions(format=image_format, size=size, margin=margin, ecc=ecc)
    image = await links.qr_code(principal=principal, code=code, options=options, domain=domain)
    headers = {"ETag": f'"{image.digest}"', "Cache-Control": _QR_CACHE_CONTROL}
    if _none_match(if_none_match, image.digest):
        return Response(status_code=304, headers=headers)
    disposition = "attachment" if download else "inline"
    headers["Content-Disposition"] = f'{disposition}; filename="{code}.{image_format}"'
    return Response(image.body, headers=headers | _QR_SAFE, media_type=image.media_type)


# The batch's path is also that of a link whose code is `batch` (an alias may be): its
# reads and changes answer there as on any link's path. Left out of the OpenAPI
# document, which has them under /api/v1/links/{code}.
BATCH_CODE = "batch"


@router.get("/batch", include_in_schema=False)
async def get_batch_link(
    principal: LinksRead, links: LinksDep, response: Response, domain: DomainQuery = None
) -> LinkRead:
    return await get_link(BATCH_CODE, principal, links, response, domain)


@router.patch("/batch", include_in_schema=False)
async def update_batch_link(
    link_in: LinkUpdate,
    principal: LinksWrite,
    links: LinksDep,
    key: KeyDep,
    if_match: IfMatch = None,
    domain: DomainQuery = None,
) -> Response:
    return await update_link(BATCH_CODE, link_in, principal, links, key, if_match, domain)


@router.delete("/batch", status_code=204, include_in_schema=False)
async def delete_batch_link(
    principal: LinksWrite,
    links: LinksDep,
    if_match: DeleteIfMatch = None,
    domain: DomainQuery = None,
) -> Response:
    return await delete_link(BATCH_CODE, principal, links, if_match, domain)
