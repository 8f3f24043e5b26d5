"""create_app(settings): the one place where kurz's parts are wired together."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from kurz import __version__, errors, health, metrics
from kurz.analytics import views as analytics_views
from kurz.analytics.pipeline import Analytics
from kurz.analytics.store import ClickStore
from kurz.bodylimit import BodyLimit
from kurz.cache import (
    CacheNodes,
    InvalidationBus,
    LRUCache,
)
from kurz.cache.nodes import parse_node
from kurz.clock import system_clock
from kurz.config import Settings
from kurz.db import Database, ensure_schema
from kurz.grpc.server import GrpcServer
from kurz.idempotency import Idempotency
from kurz.jobs import JobStore, Registry, Worker
from kurz.limits import RateLimitHeaders, ServiceLimits, too_many_requests
from kurz.links import redirect
from kurz.links import views as link_views
from kurz.links.cache import Targets, target_cache
from kurz.links.codes import code_in
from kurz.links.redirect import OUTCOME, send_redirect
from kurz.links.scheduled import retire_expired
from kurz.links.urls import Origins
from kurz.links.visit import Outcome, Visitor, Visits
from kurz.methods import MethodRouting
from kurz.openapi import complete
from kurz.requestid import RequestIds
from kurz.state import AppState
from kurz.types import Clock

log = logging.getLogger("kurz")

_VISITS = frozenset({"GET", "HEAD"})

# How many allocations (less deallocations) start a collection of the youngest
# generation while kurz serves (Python's default is 700); see create_app's lifespan.
YOUNG = 10_000

DESCRIPTION = """\
A self-hosted URL shortener.

Every `/api/` call takes `Authorization: Bearer <key>` (make one with
`kurz keys create --name NAME`). Errors are RFC 9457 `application/problem+json`
(`ProblemDetails`). Any request whose body is declared larger than
`KURZ_MAX_BODY_BYTES` gets a 413, and one with a malformed Content-Length a 400.

`POST` and `PATCH` take an optional `Idempotency-Key: "<unique string>"`: a retry
with the same key and body gets the first response again, with
`Idempotent-Replayed: true`, and runs nothing twice. Keys are kept for 24 hours
(`KURZ_IDEMPOTENCY_TTL`).
"""


class KurzApp(FastAPI):
    """FastAPI, with the redirect fast path in front of all of it.

    A plain redirect is answered before Starlette's middleware and FastAPI's routing
    and per-request telemetry check, which together cost more than the redirect itself
    (docs/decisions/0002-asgi-server.md has the measurements): from L1 without
    awaiting anything, and on an L1 miss through L2 and SQL (ADR 0007). It gives no
    request id (kurz.requestid): making and echoing one would cost a cached redirect
    more than the 1% it may (README, Logs).
    """

    visits: Visits
    # Peers whose X-Request-ID (as their X-Forwarded-For) is believed.
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    # What `kurz worker` runs, wired to this app's stores and caches.
    jobs_registry: Registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in _VISITS:
            visits = self.visits
            # Every path of kurz's own has a second '/' or a '.', or is reserved, so it
            # can never be a cached code.
            target = visits.cached(scope["path"][1:])
            if target is not None:
                limits = visits.limits
                ip = limits.client_ip(scope) if visits.needs_ip else ""
                if limits.in_process:
                    decision = limits.redirect_now(ip)
                else:
                    decision = await visits.limit(ip)
                if decision is None or decision.allowed:
                    clicks = visits.clicks
                    if clicks is not None:
                        # Journaled before it is answered: a visitor who got the redirect
                        # has a click that outlives this process (ADR 0014).
                        clicks.click(target.link_id, scope, ip)
                    await send_redirect(target, scope, send, decision)
                    return
                scope[OUTCOME] = Outcome(None, too_many_requests(decision), decision)
            else:
                code = code_in(scope["path"])
                if code is not None:
                    ip = visits.limits.client_ip(scope) if visits.needs_ip else ""
                    outcome = await visits.decide(
                        code, Visitor(ip, scope), peek=scope["method"] == "HEAD", counted=True
                    )
                    if outcome.target is not None:
                        await send_redirect(outcome.target, scope, send, outcome.limit)
                        return
                    # A refusal: the `follow` route renders it (a page or problem+json).
                    scope[OUTCOME] = outcome
        await super().__call__(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = complete(super().openapi())
        return self.openapi_schema

    def build_middleware_stack(self) -> ASGIApp:
        # Around Starlette's ServerErrorMiddleware, so that a 500 carries the id too.
        return RequestIds(super().build_middleware_stack(), self.trusted_proxies)


def cache_nodes(settings: Settings) -> CacheNodes | None:
    if not settings.cache_nodes:
        return None
    return CacheNodes(
        settings.cache_nodes,
        points=settings.cache_points,
        balance=settings.cache_balance,
        timeout=settings.cache_timeout,
    )


def invalidation_bus(settings: Settings) -> InvalidationBus | None:
    urls = [parse_node(url)[2] for url in settings.cache_nodes] or (
        [settings.redis_url] if settings.redis_url else []
    )
    return InvalidationBus(urls, timeout=settings.cache_timeout) if urls else None


def background_jobs(state: AppState) -> Registry:
    """kurz's own jobs and their schedules (docs/jobs.md). Every handler is idempotent:
    a job whose worker died runs again."""
    settings = state.settings
    registry = Registry()

    @registry.job("purge-idempotency-keys")
    async def purge_idempotency_keys(_payload: dict[str, Any]) -> None:
        await state.idempotency.purge()

    @registry.job("retire-expired-links", timeout=1_800.0)
    async def retire_expired_links(_payload: dict[str, Any]) -> None:
        async def retired(codes: list[str]) -> None:
            for code in codes:
                await state.targets.changed(code)

        await retire_expired(
            db=state.db, clock=state.clock, grace=settings.expired_link_grace, retired=retired
        )

    @registry.job("purge-clicks", timeout=1_800.0)
    async def purge_clicks(_payload: dict[str, Any]) -> None:
        # Also with analytics off now: events recorded while it was on still age.
        store = state.analytics.store if state.analytics is not None else ClickStore(state.db)
        await store.purge(now=state.clock(), retention=settings.analytics_retention)

    registry.every(
        "purge-idempotency-keys", settings.idempotency_purge_interval, "purge-idempotency-keys"
    )
    registry.every("purge-clicks", 3_600.0, "purge-clicks")
    registry.every("retire-expired-links", 3_600.0, "retire-expired-links")
    return registry


def create_app(settings: Settings, *, clock: Clock = system_clock) -> KurzApp:
    db = Database.from_url(
        settings.database_url,
        pool_size=settings.database_pool_size,
        pool_timeout=settings.database_pool_timeout,
    )
    cache = target_cache(settings, db, nodes=cache_nodes(settings), bus=invalidation_bus(settings))
    targets = Targets(cache)
    limits = ServiceLimits.from_settings(settings, clock)
    idempotency = Idempotency(
        db, clock, ttl=settings.idempotency_ttl, lock_timeout=settings.idempotency_lock_timeout
    )
    jobs = JobStore(db, clock)
    analytics = Analytics.from_settings(settings, db, clock) if settings.analytics else None
    visits = Visits(
        targets=targets,
        db=db,
        clock=clock,
        limits=limits,
        clicks=analytics.recorder if analytics is not None else None,
    )
    state = AppState(
        settings=settings,
        db=db,
        clock=clock,
        targets=targets,
        visits=visits,
        limits=limits,
        idempotency=idempotency,
        jobs=jobs,
        own_origins=Origins.of(base_url=settings.base_url, host=settings.host, port=settings.port),
        analytics=analytics,
        principals=LRUCache(10_000, ttl=settings.auth_cache_ttl, timer=clock)
        if settings.auth_cache_ttl
        else None,
    )
    registry = background_jobs(state)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await ensure_schema(db)
        await cache.start()
        if analytics is not None:
            await analytics.start()
        grpc_server = None
        if settings.grpc_port:
            grpc_server = GrpcServer(state, host=settings.host, port=settings.grpc_port)
            await grpc_server.start()
        worker = None
        if settings.runs_embedded_worker:
            worker = Worker(jobs, registry, concurrency=settings.worker_concurrency)
            running = asyncio.create_task(worker.run())
            if analytics is not None:
                analytics.start_consumer()
        log.debug(
            "started: %s; L1 of %d links (%s), L2 on %d nodes; limits %s; clicks %s; "
            "embedded worker %s",
            "SQLite" if settings.is_sqlite else "PostgreSQL",
            settings.redirect_cache_size,
            settings.redirect_cache_admission,
            len(settings.cache_nodes),
            "in process" if limits.in_process else "in Redis",
            "off" if analytics is None else "via Redis" if settings.redis_url else "in process",
            "on" if worker is not None else "off",
        )
        # What startup made (modules, routes, models) lives as long as the process: out
        # of the collector's sight, a full collection examines only what was made since,
        # instead of holding every request while it walks the whole heap.
        gc.freeze()
        # A redirect's garbage dies by reference count, but the clicks it queues live on
        # until a batch takes them. At Python's 700 they set off a young collection about
        # every 5 ms at 256 connections, and after freeze() a full one after every
        # hundred young ones (the full collection waits for a quarter of the objects that
        # survived the last one, and freeze() left almost none). The collector took about
        # 6.5% of the process's CPU; every YOUNG allocations, about 1% and no full
        # collection in 30 s (docs/benchmarks.md, "The collector").
        threshold = gc.get_threshold()
        gc.set_threshold(YOUNG, *threshold[1:])
        try:
            yield
        finally:
            gc.set_threshold(*threshold)
            gc.unfreeze()
            if grpc_server is not None:
                await grpc_server.stop()
            if worker is not None:
                # Lets running jobs finish (or releases them), then returns.
                worker.stop()
                await running
            await jobs.close()
            if analytics is not None:
                # Every click queued so far is written before the process exits.
                await analytics.stop()
            await limits.close()
            await cache.close()
            await db.dispose()

    app = KurzApp(
        title="kurz",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        # Starlette's redirect for a trailing slash is built from the Host header.
        redirect_slashes=False,
    )
    app.state.kurz = state
    app.visits = visits
    app.jobs_registry = registry
    app.trusted_proxies = settings.trusted_proxies
    errors.install(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(link_views.router)
    app.include_router(analytics_views.router)
    # Last, so that /{code} can never shadow one of kurz's own routes.
    app.include_router(redirect.router)
    app.add_middleware(MethodRouting, router=app.router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RateLimitHeaders)
    return app
