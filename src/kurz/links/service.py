"""What the REST views and the gRPC servicer both call: one function per operation.

Each opens its transaction (at the isolation level it names), runs the service
functions, goes through the idempotency store where a retry must not repeat a write,
and tells the caches of a change. The two APIs only parse and render around these,
so they cannot drift apart.

A keyed write's answer is kept by the idempotency store as REST sends it (status,
headers, JSON body): both APIs replay from that one record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from kurz.analytics import stats
from kurz.analytics.models import LinkStats
from kurz.auth.models import Principal
from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, REPEATABLE_READ
from kurz.errors import invalid, not_found
from kurz.idempotency import Keyed, Stored
from kurz.links import queries
from kurz.links.codes import is_code
from kurz.links.models import LinkCreate, LinkPagination, LinkRead, LinkUpdate
from kurz.links.queries import Versions, etag
from kurz.links.urls import validate_tag

if TYPE_CHECKING:
    from kurz.bootstrap import Parts

PREFIX = "/api/v1/links"


def caller_of(principal: Principal) -> str:
    """Whose idempotency keys a request's key is among: its API key's."""
    return f"key:{principal.key_id}"


def checked_code(code: str) -> str:
    """`code`, if it can be one; whatever cannot is answered before it reaches SQL."""
    if not is_code(code):
        raise not_found(f"No link with code '{code[:64]}'.")
    return code


def rendered(status: int, link: LinkRead, headers: dict[str, str]) -> Response:
    return Response(link.model_dump_json().encode(), status, headers, media_type="application/json")


def version_of(stored: Stored) -> int:
    """The link version a stored 200 or 201 carries in its ETag."""
    return int(dict(stored.headers)["etag"].strip('"'))


async def create(
    state: Parts, *, principal: Principal, link_in: LinkCreate, keyed: Keyed | None
) -> Stored:
    async def operation(conn: AsyncConnection) -> Response:
        link = await queries.create(
            conn=conn,
            link_in=link_in,
            owner=principal,
            now=utcnow(state.clock),
            base_url=state.settings.base_url,
            own=state.own_origins,
        )
        headers = {"Location": f"{PREFIX}/{link.code}", "ETag": etag(link.version)}
        return rendered(201, link, headers)

    stored = await state.idempotency.run(operation, keyed)
    if stored.status == 201:
        # A process may remember the code as unknown (a visitor tried it first).
        code = dict(stored.headers)["location"].rpartition("/")[2]
        await state.targets.changed(code, version_of(stored))
    return stored


async def get(state: Parts, *, principal: Principal, code: str) -> LinkRead:
    # One snapshot for the row and its tags, so the ETag names exactly what is sent.
    async with state.db.read(REPEATABLE_READ) as conn:
        return await queries.get(
            conn=conn,
            code=checked_code(code),
            principal=principal,
            base_url=state.settings.base_url,
        )


async def list_(
    state: Parts, *, principal: Principal, limit: int, cursor: str | None, tag: str | None
) -> LinkPagination:
    """A page of links; `tag` as the caller sent it (a 422 if it cannot be one)."""
    if tag is not None:
        try:
            tag = validate_tag(tag)
        except ValueError as exc:
            raise invalid("tag", str(exc), location="query") from None
    # Links and their tags are two statements: one snapshot keeps them together.
    async with state.db.read(REPEATABLE_READ) as conn:
        return await queries.list_(
            conn=conn,
            principal=principal,
            limit=limit,
            cursor=cursor,
            tag=tag,
            base_url=state.settings.base_url,
        )


async def update(
    state: Parts,
    *,
    principal: Principal,
    code: str,
    link_in: LinkUpdate,
    versions: Versions,
    keyed: Keyed | None,
) -> Stored:
    async def operation(conn: AsyncConnection) -> Response:
        link = await queries.update(
            conn=conn,
            code=checked_code(code),
            principal=principal,
            link_in=link_in,
            versions=versions,
            now=utcnow(state.clock),
            base_url=state.settings.base_url,
            own=state.own_origins,
        )
        return rendered(200, link, {"ETag": etag(link.version)})

    stored = await state.idempotency.run(operation, keyed)
    if stored.status == 200:
        await state.targets.changed(code, version_of(stored))
    return stored


async def delete(state: Parts, *, principal: Principal, code: str, versions: Versions) -> None:
    async with state.db.write(READ_COMMITTED) as conn:
        await queries.delete(
            conn=conn,
            code=checked_code(code),
            principal=principal,
            versions=versions,
            now=utcnow(state.clock),
        )
    await state.targets.changed(code)


async def link_stats(
    state: Parts, *, principal: Principal, code: str, span: stats.Window, top: int
) -> LinkStats:
    checked_code(code)
    # Totals, series and breakdowns from one snapshot: they add up while clicks land.
    async with state.db.read(REPEATABLE_READ) as conn:
        link_id = await queries.get_id(conn=conn, code=code, principal=principal)
        return await stats.get_link_stats(conn=conn, link_id=link_id, code=code, span=span, top=top)
