"""Following a short link: the hot path.

A link in this process's cache (L1), uncapped, is answered by FastPath before FastAPI
sees the request, so a repeat hit costs a dict lookup and two ASGI messages
(docs/redirects.md). Everything else (a miss, a capped or expired link, an unknown
code) takes the `follow` route, which reads through the tiers of kurz.cache.
"""

from __future__ import annotations

import html
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response
from starlette.types import Scope, Send

from kurz.cache import FOREVER, TieredCache
from kurz.db import READ_COMMITTED, Database
from kurz.errors import Problem
from kurz.limits import SCOPE_KEY, too_many_requests
from kurz.links import queries, service
from kurz.links.codes import code_in
from kurz.openapi import answer, problem, responses
from kurz.ratelimit import Decision, carries_fields, with_fields
from kurz.state import StateDep
from kurz.types import Clock

# Browsers keep permanent redirects indefinitely unless told otherwise; a short
# private max-age lets an edit, an expiry or a visit cap take effect (as Shlink does).
_PERMANENT_CACHE = (b"cache-control", b"private, max-age=90")
_EMPTY = (b"content-length", b"0")
# Bytes a forwarded query string may carry into Location unescaped.
_QUERY_SAFE = "!$&'()*+,/:;=?@~-._%"


@dataclass(frozen=True, slots=True)
class Target:
    """What the redirect path needs to answer for one link, precomputed."""

    link_id: int
    version: int
    status: int
    url: str
    forward_query: bool
    expires_at: float | None
    max_visits: int | None
    headers: list[tuple[bytes, bytes]]

    @classmethod
    def of(
        cls,
        *,
        link_id: int,
        version: int,
        status: int,
        url: str,
        forward_query: bool,
        expires_at: float | None,
        max_visits: int | None,
    ) -> Target:
        headers = [(b"location", url.encode("ascii")), _EMPTY]
        if status in (301, 308):
            headers.append(_PERMANENT_CACHE)
        return cls(link_id, version, status, url, forward_query, expires_at, max_visits, headers)

    @classmethod
    def from_row(cls, row: Any) -> Target:
        return cls.of(
            link_id=row.id,
            version=row.version,
            status=row.redirect_status,
            url=row.url,
            forward_query=row.forward_query,
            expires_at=row.expires_at.timestamp() if row.expires_at else None,
            max_visits=row.max_visits,
        )

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def headers_for(self, query_string: bytes) -> list[tuple[bytes, bytes]]:
        if not (self.forward_query and query_string):
            return self.headers
        location = _with_query(self.url, query_string.decode("latin-1"))
        return [(b"location", location.encode("ascii")), *self.headers[1:]]


def _with_query(url: str, query: str) -> str:
    """Append the visitor's query to the target's, before any #fragment."""
    base, hash_, fragment = url.partition("#")
    query = quote(query, safe=_QUERY_SAFE, encoding="latin-1")
    joined = f"{base}{'&' if '?' in base else '?'}{query}"
    return f"{joined}{hash_}{fragment}"


class TargetCodec:
    """Targets as L2 keeps them: a JSON array, the fields in a fixed order."""

    def encode(self, target: Target) -> bytes:
        fields = [
            target.link_id,
            target.version,
            target.status,
            target.url,
            target.forward_query,
            target.expires_at,
            target.max_visits,
        ]
        return json.dumps(fields, separators=(",", ":")).encode()

    def decode(self, payload: bytes) -> Target:
        link_id, version, status, url, forward_query, expires_at, max_visits = json.loads(payload)
        return Target.of(
            link_id=int(link_id),
            version=int(version),
            status=int(status),
            url=str(url),
            forward_query=bool(forward_query),
            expires_at=None if expires_at is None else float(expires_at),
            max_visits=None if max_visits is None else int(max_visits),
        )

    def version(self, target: Target) -> int:
        return target.version


def loader(db: Database) -> Callable[[str], Awaitable[Target | None]]:
    """The cache's last tier: the live link behind a code, from the database."""

    async def load(code: str) -> Target | None:
        async with db.read() as conn:
            row = await queries.resolve(conn=conn, code=code)
        return None if row is None else Target.from_row(row)

    return load


def many_loader(db: Database) -> Callable[[Sequence[str]], Awaitable[dict[str, Target]]]:
    """The cache's batched refresh: the live links behind many codes, in one statement."""

    async def load_many(codes: Sequence[str]) -> dict[str, Target]:
        async with db.read() as conn:
            rows = await queries.resolve_many(conn=conn, codes=codes)
        return {code: Target.from_row(row) for code, row in rows.items()}

    return load_many


class Redirector:
    """Resolves codes to targets through the cache tiers, and invalidates them on change."""

    def __init__(self, db: Database, cache: TieredCache[Target], clock: Clock) -> None:
        self.db = db
        self.cache = cache
        self.clock = clock

    async def find(self, code: str) -> Target | None:
        # Every GET or HEAD of a code has been through FastPath.hit, which read L1.
        return await self.cache.get(code, counted=True)

    def forget(self, code: str) -> None:
        """Drop `code` from this process's L1 only, to read it afresh."""
        self.cache.drop(code)

    async def changed(self, code: str, version: int = FOREVER) -> None:
        """`code` now has `version` (FOREVER: deleted); no tier may serve an older one."""
        await self.cache.invalidate(code, version)

    async def take_visit(self, target: Target, *, peek: bool) -> bool:
        """Whether a capped link has a visit left; uses one up unless `peek` (a HEAD)."""
        if peek:
            async with self.db.read() as conn:
                return await queries.has_visits_left(conn=conn, link_id=target.link_id)
        async with self.db.write(READ_COMMITTED) as conn:
            return await queries.count_visit(conn=conn, link_id=target.link_id)


class FastPath:
    """Answers a repeat hit on a cached, uncapped, unexpired link straight from ASGI.

    kurz.app.KurzApp asks it first, before FastAPI (and its routing, middleware and
    telemetry) sees the request.
    """

    __slots__ = ("cache", "clock", "redirector")

    def __init__(self, redirector: Redirector) -> None:
        # L1 itself: a hit here never awaits.
        self.cache = redirector.cache.l1
        self.clock = redirector.clock
        self.redirector = redirector

    def hit(self, scope: Scope) -> Target | None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return None
        # Every path of kurz's own has a second '/' or a '.', or is reserved, so it
        # can never be a cached code.
        return self.usable(self.cache.get(scope["path"][1:]))

    def usable(self, target: Target | None) -> Target | None:
        """The target, if this path may answer it: no visit cap, not expired."""
        if (
            target is None
            or target.max_visits is not None
            or (target.expires_at is not None and self.clock() >= target.expires_at)
        ):
            return None
        return target

    def code(self, scope: Scope) -> str | None:
        """The code a GET or HEAD asks for, if its path can be one."""
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return None
        return code_in(scope["path"])

    async def find(self, code: str) -> Target | None:
        """An L1 miss, read through L2 and SQL without FastAPI's routing (ADR 0007)."""
        try:
            return self.usable(await self.redirector.find(code))
        except Exception:
            # The `follow` route reads it again, and answers a failure its own way.
            return None


async def send_redirect(
    target: Target, scope: Scope, send: Send, decision: Decision | None = None
) -> None:
    """The redirect, with the RateLimit fields when a policy was checked and the client
    is near its limit (ADR 0003)."""
    headers = target.headers_for(scope["query_string"])
    if decision is not None and carries_fields(target.status, decision):
        headers = with_fields(headers, decision)
    await send({"type": "http.response.start", "status": target.status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · kurz</title>
<style>
body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:15vh auto;padding:0 1rem}}
h1{{font-size:1.5rem}}
</style></head>
<body><h1>{title}</h1><p>{detail}</p></body></html>
"""


def _answer(request: Request, problem: Problem) -> Response:
    """A small HTML page for a browser, problem+json for anything else."""
    if "text/html" in request.headers.get("accept", ""):
        page = _PAGE.format(title=html.escape(problem.title), detail=html.escape(problem.detail))
        return HTMLResponse(page, status_code=problem.status, headers=problem.headers)
    return problem.response(request.url.path)


router = APIRouter(tags=["redirect"])


async def follow(code: str, request: Request, state: StateDep) -> Response:
    # The fast path leaves its decision here when it refused a cached link.
    decision = request.scope.get(SCOPE_KEY) or await state.limits.check_redirect(request.scope)
    if decision is not None and not decision.allowed:
        return _answer(request, too_many_requests(decision))
    try:
        target = await service.follow(state, code, peek=request.method == "HEAD")
    except Problem as problem:
        return _answer(request, problem)
    if state.analytics is not None:
        state.analytics.recorder.click(target.link_id, request.scope)
    return _redirect(target, request)


_FOLLOW_RESPONSES = responses(
    {
        301: answer("Moved permanently", "Location", "Cache-Control"),
        302: answer("Found (the default)", "Location"),
        307: answer("Temporary redirect", "Location"),
        308: answer("Permanent redirect", "Location", "Cache-Control"),
        404: problem("No such link", html=True),
        410: problem("The link expired, or its visit cap is reached", html=True),
        429: problem("The client's `redirect` rate limit is used up", "Retry-After", html=True),
        503: problem("The database does not answer", "Retry-After", html=True),
    },
    limited=True,
)

# "/{code}/" too, unlisted: as at Bitly and Shlink, a short link pasted with a slash
# after it still works.
for _path, _method, _operation_id in [
    ("/{code}", "GET", "followLink"),
    ("/{code}", "HEAD", "followLinkHead"),
    ("/{code}/", "GET", "followLinkSlash"),
    ("/{code}/", "HEAD", "followLinkSlashHead"),
]:
    router.add_api_route(
        _path,
        follow,
        methods=[_method],
        operation_id=_operation_id,
        include_in_schema=not _path.endswith("/"),
        summary="Follow a short link",
        description=(
            "Redirects with the link's status (301, 302, 307 or 308) and `Location`. "
            "Browsers (Accept: text/html) get a small HTML page for 404, 410, 429 and 503; "
            "other clients get problem+json. HEAD answers as GET does without using up a "
            "visit."
        ),
        status_code=302,
        response_class=Response,
        responses=_FOLLOW_RESPONSES,
    )


def _redirect(target: Target, request: Request) -> Response:
    response = Response(status_code=target.status)
    response.raw_headers = target.headers_for(request.scope["query_string"])
    return response
