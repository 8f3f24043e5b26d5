"""The system page (/_/admin/system): what this kurz runs on and how it is doing. The
database's readiness is /readyz's check (kurz.db.ready); the click backlog and the
cache's counters are those /metrics reads, for this process."""

from __future__ import annotations

import asyncio
import functools
import platform
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, cast
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response

from kurz import __version__
from kurz.analytics.pipeline import Analytics
from kurz.analytics.stream import Backlog, backlog
from kurz.bootstrap import RedisClients
from kurz.cache.nodes import parse_node
from kurz.config import Settings
from kurz.db import Database
from kurz.db.migrate import applied_revisions, head_revisions
from kurz.db.ready import check_ready
from kurz.deps import part
from kurz.errors import Problem
from kurz.extras import redis_error
from kurz.jobs import JobState, JobStore
from kurz.links.cache import Targets
from kurz.web.admin.guard import AdminDep
from kurz.web.render import render
from kurz.web.viewer import PageRoute

if TYPE_CHECKING:
    from redis.asyncio import Redis

router = APIRouter(include_in_schema=False, route_class=PageRoute)


def _failures() -> tuple[type[Exception], ...]:
    return (redis_error(), OSError, asyncio.TimeoutError)


# The migrations this kurz ships: read from their files once, not on every visit.
_heads = functools.cache(head_revisions)


@dataclass(frozen=True, slots=True)
class Store:
    """The database, named without its password."""

    kind: str
    where: str
    revisions: str
    current: bool
    # None when ready; else why not (/readyz's 503 detail).
    not_ready: str | None


@dataclass(frozen=True, slots=True)
class RedisNode:
    address: str
    uses: str
    # None when it answered PING; else what went wrong.
    failure: str | None


@dataclass(frozen=True, slots=True)
class Clicks:
    """This process's click queue, and the stream's backlog when scaled out."""

    queued: int
    capacity: int
    dropped: int
    written: int
    stream: Backlog | None
    # Set when the stream's Redis did not answer.
    stream_failure: str | None


async def _store(db: Database, settings: Settings) -> Store:
    url = db.engine.url
    if db.is_sqlite:
        kind, where = "SQLite", str(db.file) if db.file is not None else "in memory"
    else:
        kind = "PostgreSQL"
        where = f"{url.host}:{url.port or 5432}/{url.database} as {url.username}"
    try:
        await check_ready(db, min_free_bytes=settings.ready_min_free_bytes)
        not_ready = None
    except Problem as problem:
        not_ready = problem.detail
    try:
        applied = await applied_revisions(db)
    except Exception:  # An unreachable database: said above.
        applied = set()
    return Store(kind, where, ", ".join(sorted(applied)) or "none", applied == _heads(), not_ready)


def address(url: str) -> str:
    """Where a Redis URL points, without its password."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    where = f"{parts.hostname}:{parts.port or 6379}"
    number = parts.path.strip("/")
    return f"{where}/{number}" if number and number != "0" else where


def _uses(url: str, settings: Settings) -> str:
    uses = []
    if url == settings.redis_url:
        uses.append("KURZ_REDIS_URL: rate limits, cache invalidations")
        if settings.analytics:
            uses.append("the click stream")
    if url in {parse_node(node)[2] for node in settings.cache_nodes}:
        uses.append("an L2 cache node")
    return ", ".join(uses)


async def _ping(client: Redis) -> str | None:
    try:
        await cast(Awaitable[bool], client.ping())
    except _failures() as exc:
        return str(exc) or type(exc).__name__
    return None


async def _redis_nodes(redis: RedisClients, settings: Settings) -> list[RedisNode]:
    urls = redis.urls
    failures = await asyncio.gather(*(_ping(redis.client(url)) for url in urls))
    return [
        RedisNode(address(url), _uses(url, settings), failure)
        for url, failure in zip(urls, failures, strict=True)
    ]


async def _clicks(
    analytics: Analytics | None, redis: RedisClients, settings: Settings
) -> Clicks | None:
    if analytics is None:
        return None
    stream, failure = None, None
    if analytics.redis is not None:
        try:
            stream = await backlog(redis.client(settings.redis_url))
        except _failures() as exc:
            failure = str(exc) or type(exc).__name__
    queue = analytics.queue
    return Clicks(
        len(queue), queue.capacity, queue.dropped, analytics.drainer.written, stream, failure
    )


def age(seconds: float | None) -> str:
    """A duration as a person reads it: 45 s, 12 min, 3 h 5 min, 2 d 4 h."""
    if seconds is None:
        return ""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, hours, days = whole // 60, whole // 3600, whole // 86_400
    if hours == 0:
        return f"{minutes} min"
    if days == 0:
        return f"{hours} h {minutes % 60} min"
    return f"{days} d {hours % 24} h"


@router.get("/_/admin/system")
async def system_page(
    request: Request,
    viewer: AdminDep,
    db: Annotated[Database, part("db")],
    settings: Annotated[Settings, part("settings")],
    redis: Annotated[RedisClients, part("redis")],
    analytics: Annotated[Analytics | None, part("analytics")],
    targets: Annotated[Targets, part("targets")],
    jobs: Annotated[JobStore, part("jobs")],
) -> Response:
    by_queue = await jobs.counts()
    states = dict.fromkeys(JobState, 0)
    for (_queue, state), n in by_queue.items():
        states[state] += n
    return render(
        request,
        "admin/system.html",
        title="System",
        nav="admin",
        version=__version__,
        python=f"{platform.python_implementation()} {platform.python_version()}",
        store=await _store(db, settings),
        redis_nodes=await _redis_nodes(redis, settings),
        clicks=await _clicks(analytics, redis, settings),
        job_states=states,
        oldest_due=age(await jobs.oldest_due_age()),
        l1=targets.l1.stats(),
        l1_capacity=settings.redirect_cache_size,
    )
