"""The web app: the redirect fast path in front of FastAPI, over kurz.bootstrap's parts."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from kurz import __version__, health, httperrors, metrics
from kurz.analytics import views as analytics_views
from kurz.auth import audit_views, key_views, session_views, user_views
from kurz.bodylimit import BodyLimit
from kurz.bootstrap import Parts, running
from kurz.cors import ApiCors
from kurz.exports import views as export_views
from kurz.imports import views as import_views
from kurz.jobs import Worker
from kurz.limitheaders import RateLimitHeaders
from kurz.limits import too_many_requests
from kurz.links import domain_views, redirect
from kurz.links import views as link_views
from kurz.links.codes import code_in
from kurz.links.redirect import OUTCOME, send_elsewhere, send_redirect
from kurz.links.visit import Outcome, Visits
from kurz.methods import MethodRouting
from kurz.openapi import complete
from kurz.requestid import RequestIds
from kurz.requestmetrics import CountRequests, RouteMetrics
from kurz.web import (
    admin,
    assets,
    dashboard,
    explorer,
    import_pages,
    key_pages,
    link_pages,
    links_bulk,
    links_list,
    missing,
    pages,
    session_pages,
    stats_pages,
    webhook_pages,
)
from kurz.webhooks import views as webhook_views

log = logging.getLogger("kurz")

_VISITS = frozenset({"GET", "HEAD"})

# How many allocations (less deallocations) start a collection of the youngest
# generation while kurz serves (Python's default is 700); see create_app's lifespan.
YOUNG = 10_000

DESCRIPTION = """\
A self-hosted URL shortener.

Every `/api/` call takes `Authorization: Bearer <key>` (make one with
`kurz keys create --name NAME`, or `POST /api/v1/keys`), or the session cookie a
sign-in sets (`POST /api/v1/session`); with the cookie, a request that may change
something also sends the session's CSRF token as `X-CSRF-Token`. Each route needs a
scope of the key (a 403 `insufficient-scope` names the one missing). Errors are RFC
9457 `application/problem+json` (`ProblemDetails`). Any request whose body is declared
larger than `KURZ_MAX_BODY_BYTES` gets a 413, and one with a malformed Content-Length
a 400.

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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in _VISITS:
            visits = self.visits
            # Every path of kurz's own has a second '/' or a '.', or is reserved, so it
            # can never be a cached code.
            target = visits.cached(scope["path"][1:], scope["headers"])
            if target is not None:
                # Visits.decide's limit and click, unrolled for an L1 hit: no Visitor or
                # Outcome is made, and the in-process limiter is not awaited.
                limits = visits.limits
                ip = limits.client_ip(scope) if visits.needs_ip else ""
                if limits.in_process:
                    decision = limits.redirect_now(ip)
                else:
                    decision = await visits.limit(ip)
                if decision is None or decision.allowed:
                    visits.fast += 1
                    clicks = visits.clicks
                    if not target.routed:
                        if clicks is not None:
                            # Journaled before it is answered: a visitor who got the
                            # redirect has a click that outlives this process (ADR 0014).
                            clicks.click(target.link_id, scope, ip)
                        await send_redirect(target, scope, send, decision)
                        return
                    # Targeting rules and variants are asked here too, without awaiting
                    # (ADR 0015).
                    at = visits.where(target, scope, ip)
                    if clicks is not None:
                        clicks.click(target.link_id, scope, ip, target.variant_at(at))
                    await send_redirect(target, scope, send, decision, at)
                    return
                visits.fast_limited += 1
                scope[OUTCOME] = Outcome(None, too_many_requests(decision), decision)
            else:
                code = code_in(scope["path"])
                if code is not None:
                    outcome = await visits.decide(
                        code,
                        visits.visitor(scope),
                        domain=visits.domain(scope),
                        peek=scope["method"] == "HEAD",
                        counted=True,
                    )
                    if outcome.target is not None:
                        await send_redirect(outcome.target, scope, send, outcome.limit, outcome.at)
                        return
                    # A refusal, or a redirect in its stead: the `follow` route renders
                    # it (a page or problem+json).
                    scope[OUTCOME] = outcome
                elif scope["path"] == "/":
                    root = visits.root(scope)
                    if root is not None:
                        await send_elsewhere(root, scope, send)
                        return
        await super().__call__(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = complete(super().openapi())
        return self.openapi_schema

    def build_middleware_stack(self) -> ASGIApp:
        # Around Starlette's ServerErrorMiddleware, so that a 500 carries the id too.
        return RequestIds(super().build_middleware_stack(), self.trusted_proxies)


def create_app(parts: Parts) -> KurzApp:
    """The web app over `parts` (kurz.bootstrap.build): routes and middleware only."""
    settings = parts.settings

    requests = RouteMetrics()
    collector = metrics.KurzCollector(parts, requests=requests)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if parts.locator is not None:
            # Now, not on the first new visitor's redirect; and before gc.freeze(),
            # which then keeps the collector off its many objects.
            parts.locator.warm()
        async with running(parts):
            grpc_server = None
            if settings.grpc_port:
                from kurz.grpc.server import GrpcServer  # kurz[grpc]: only when it serves

                grpc_server = GrpcServer(parts, host=settings.host, port=settings.grpc_port)
                await grpc_server.start()
            worker = None
            if settings.runs_embedded_worker:
                worker = Worker(
                    parts.jobs,
                    parts.registry,
                    concurrency=settings.worker_concurrency,
                    lease=settings.worker_lease,
                )
                collector.worker = worker
                running_worker = asyncio.create_task(worker.run())
                if parts.analytics is not None:
                    parts.analytics.start_consumer()
            log.debug(
                "started: %s; L1 of %d links (%s), L2 on %d nodes; limits %s; clicks %s; "
                "embedded worker %s",
                "SQLite" if settings.is_sqlite else "PostgreSQL",
                settings.redirect_cache_size,
                settings.redirect_cache_admission,
                len(settings.cache_nodes),
                "in process" if parts.limits.in_process else "in Redis",
                "off"
                if parts.analytics is None
                else "via Redis"
                if settings.redis_url
                else "in process",
                "on" if worker is not None else "off",
            )
            try:
                with _collected_rarely():
                    yield
            finally:
                if grpc_server is not None:
                    await grpc_server.stop()
                if worker is not None:
                    # Lets running jobs finish (or releases them), then returns.
                    worker.stop()
                    await running_worker

    app = KurzApp(
        title="kurz",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        # /docs is kurz.web.explorer: Swagger UI from kurz's own copy, not a CDN.
        docs_url=None,
        redoc_url=None,
        # Starlette's redirect for a trailing slash is built from the Host header.
        redirect_slashes=False,
    )
    app.state.kurz = parts
    app.state.scrape = metrics.Scrape(collector)
    app.visits = parts.visits
    app.trusted_proxies = settings.trusted_proxies
    httperrors.install(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(link_views.router)
    app.include_router(domain_views.router)
    app.include_router(analytics_views.router)
    app.include_router(export_views.router)
    app.include_router(audit_views.router)
    app.include_router(key_views.router)
    app.include_router(session_views.router)
    app.include_router(user_views.router)
    app.include_router(webhook_views.router)
    app.include_router(import_views.router)
    app.include_router(pages.router)
    app.include_router(session_pages.router)
    app.include_router(dashboard.router)
    app.include_router(explorer.router)
    app.include_router(links_list.router)
    app.include_router(links_bulk.router)
    app.include_router(link_pages.router)
    app.include_router(key_pages.router)
    app.include_router(webhook_pages.router)
    app.include_router(import_pages.router)
    app.include_router(admin.router)
    app.include_router(stats_pages.router)
    app.include_router(assets.router)
    # Last of the web app's: any other /_/ address is a page saying it is not there.
    app.include_router(missing.router)
    # Last, so that /{code} can never shadow one of kurz's own routes.
    app.include_router(redirect.router)
    app.add_middleware(MethodRouting, router=app.router)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        paths={
            link_views.BATCH: settings.max_batch_body_bytes,
            # An import's file, and the form's other fields beside it.
            import_views.PREFIX: settings.import_max_bytes + settings.max_body_bytes,
            import_pages.PAGE: settings.import_max_bytes + settings.max_body_bytes,
        },
    )
    app.add_middleware(RateLimitHeaders)
    if settings.cors_origins:
        # Outermost of these, so that every answer to an allowed origin carries its
        # fields; still behind KurzApp.__call__'s redirects, which need none.
        app.add_middleware(ApiCors, origins=settings.cors_origins)
    # Outermost of FastAPI's: it times all of them. The fast path never reaches it.
    app.add_middleware(CountRequests, metrics=requests)
    return app


@contextmanager
def _collected_rarely() -> Iterator[None]:
    """While kurz serves: what startup made (modules, routes, models) lives as long as
    the process, so it goes out of the collector's sight, and the youngest generation
    is collected every YOUNG allocations instead of every 700.

    A redirect's garbage dies by reference count, but the clicks it queues live on
    until a batch takes them: at Python's 700 they set off young collections many times
    a second, and after freeze() a full one after every hundred young ones (the full
    collection waits for a quarter of the objects that survived the last one, and
    freeze() left almost none). ADR 0010's amendment has the measurements.
    """
    gc.freeze()
    threshold = gc.get_threshold()
    gc.set_threshold(YOUNG, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
