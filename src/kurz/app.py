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
from kurz.analytics.recorder import ClickRecorder
from kurz.analytics.store import ClickStore
from kurz.bodylimit import BodyLimit
from kurz.cache import (
    CacheNodes,
    InvalidationBus,
    Lifetimes,
    LRUCache,
    TieredCache,
    TinyLFUCache,
)
from kurz.cache.nodes import parse_node
from kurz.clock import system_clock
from kurz.config import Settings
from kurz.db import Database, ensure_schema
from kurz.grpc.server import GrpcServer
from kurz.idempotency import Idempotency
from kurz.jobs import JobStore, Registry, Worker
from kurz.limits import RateLimitHeaders, ServiceLimits
from kurz.links import redirect
from kurz.links import views as link_views
from kurz.links.redirect import (
    FastPath,
    Redirector,
    Target,
    TargetCodec,
    loader,
    many_loader,
    send_redirect,
)
from kurz.links.scheduled import retire_expired
from kurz.links.service import Links
from kurz.links.urls import Origins
from kurz.methods import MethodRouting
from kurz.openapi import complete
from kurz.requestid import RequestIds
from kurz.state import AppState
from kurz.types import Clock

log = logging.getLogger("kurz")

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

    fast_path: FastPath
    limits: ServiceLimits
    # What `kurz worker` runs, wired to this app's stores and caches.
    jobs_registry: Registry
    clicks: ClickRecorder | None
    # Peers whose X-Request-ID (as their X-Forwarded-For) is believed.
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast_path = self.fast_path
        target = fast_path.hit(scope)
        code = None if target is not None else fast_path.code(scope)
        if target is not None or code is not None:
            limits = self.limits
            if limits.in_process:
                decision = limits.check_redirect_now(scope)
            else:
                decision = await limits.check_redirect(scope)
            if decision is None or decision.allowed:
                if code is not None:
                    # Checked first, so that a client over its limit reaches no tier.
                    target = await fast_path.find(code)
                if target is not None:
                    # Journaled before it is answered: a visitor who got the redirect
                    # has a click that outlives this process (ADR 0014).
                    if self.clicks is not None:
                        self.clicks.click(target.link_id, scope)
                    await send_redirect(target, scope, send, decision)
                    return
            # Refused, or not a plain redirect (unknown, capped, expired): the `follow`
            # route answers, using the decision left in the scope instead of counting
            # the request a second time.
        await super().__call__(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = complete(super().openapi())
        return self.openapi_schema

    def build_middleware_stack(self) -> ASGIApp:
        # Around Starlette's ServerErrorMiddleware, so that a 500 carries the id too.
        return RequestIds(super().build_middleware_stack(), self.trusted_proxies)


def redirect_cache(settings: Settings, db: Database) -> TieredCache[Target]:
    """L1 in this process; L2 and the invalidation bus when there are Redis nodes."""
    nodes = None
    if settings.cache_nodes:
        nodes = CacheNodes(
            settings.cache_nodes,
            points=settings.cache_points,
            balance=settings.cache_balance,
            timeout=settings.cache_timeout,
        )
    size = settings.redirect_cache_size
    l1: LRUCache[str, Target] = (
        TinyLFUCache(size) if settings.redirect_cache_admission == "tinylfu" else LRUCache(size)
    )
    bus_urls = [parse_node(url)[2] for url in settings.cache_nodes] or (
        [settings.redis_url] if settings.redis_url else []
    )
    return TieredCache(
        load=loader(db),
        load_many=many_loader(db),
        codec=TargetCodec(),
        l1=l1,
        l2=nodes,
        bus=InvalidationBus(bus_urls, timeout=settings.cache_timeout) if bus_urls else None,
        lifetimes=Lifetimes(
            l1=settings.redirect_cache_ttl,
            missing=settings.redirect_cache_missing_ttl,
            l2=settings.cache_ttl,
        ),
    )


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
                await state.redirector.changed(code)

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
    cache = redirect_cache(settings, db)
    redirector = Redirector(db, cache, clock)
    limits = ServiceLimits.from_settings(settings, clock)
    idempotency = Idempotency(
        db, clock, ttl=settings.idempotency_ttl, lock_timeout=settings.idempotency_lock_timeout
    )
    jobs = JobStore(db, clock)
    analytics = (
        Analytics.from_settings(settings, db, clock, limits.client_ip)
        if settings.analytics
        else None
    )
    own_origins = Origins.of(base_url=settings.base_url, host=settings.host, port=settings.port)
    links = Links(
        db=db,
        idempotency=idempotency,
        clock=clock,
        base_url=settings.base_url,
        own=own_origins,
        cache=redirector,
    )
    state = AppState(
        settings=settings,
        db=db,
        clock=clock,
        redirector=redirector,
        limits=limits,
        idempotency=idempotency,
        jobs=jobs,
        links=links,
        own_origins=own_origins,
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
    app.fast_path = FastPath(redirector)
    app.limits = limits
    app.jobs_registry = registry
    app.clicks = analytics.recorder if analytics is not None else None
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
