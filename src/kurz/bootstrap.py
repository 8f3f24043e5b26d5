"""kurz's parts, built from Settings in one place, and the order they start and stop in.

Every entry point asks for the parts it needs from here: the web app
(kurz.app.create_app mounts its routes over them), `kurz worker` (no FastAPI at all),
and the tests, which call `build` again with their own clock. Nothing is built at
import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kurz.accounts import Passwords
from kurz.accounts import scheduled as account_jobs
from kurz.accounts.audit_log import AuditLog
from kurz.accounts.service import Users
from kurz.accounts.sessions import Sessions
from kurz.analytics import scheduled as analytics_jobs
from kurz.analytics.events import DailySalt
from kurz.analytics.journal import place
from kurz.analytics.pipeline import Analytics
from kurz.analytics.service import Stats
from kurz.auth.keys import Keys
from kurz.auth.queries import KeyCheck
from kurz.auth.service import Access
from kurz.cache import CacheNodes, InvalidationBus, LRUCache, TieredCache
from kurz.cache.nodes import node_client, parse_node
from kurz.clock import system_clock
from kurz.config import Settings
from kurz.db import Database, ensure_schema
from kurz.exports.service import Exports
from kurz.extras import MissingExtra, need
from kurz.geo import Locator, locator
from kurz.idempotency import Idempotency
from kurz.imports.service import Imports
from kurz.jobs import JobStore, Registry
from kurz.limits import ServiceLimits
from kurz.links import scheduled as link_jobs
from kurz.links.batch import Batches
from kurz.links.cache import Targets, target_cache
from kurz.links.domain_service import DomainAdmin
from kurz.links.domains import Domains, Redirects
from kurz.links.qr import QrCodes
from kurz.links.service import Links
from kurz.links.target import Target
from kurz.links.traits import Places
from kurz.links.urls import Origins
from kurz.links.visit import Visits
from kurz.types import Clock
from kurz.webhooks import Clicks, Deliverer, Outbox, Sender, SigningKeys, Webhooks
from kurz.webhooks import scheduled as webhook_jobs
from kurz.webhooks.signing import key_file

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("kurz")


class RedisClients:
    """One client, and so one connection pool, per Redis URL, shared by every part that
    talks to that server: the limiter, the L2 node, the invalidations it publishes.

    A URL's client gives up at the shortest timeout its users asked for (an L2 node's
    and the limiter's, when they are one server): each has a better answer than
    waiting (the next node, the database, the in-process limiter). The click stream
    keeps a client of its own, since its consumers block on reads for longer than any
    of those timeouts, and a subscription holds a connection of its own anyway.
    """

    def __init__(self) -> None:
        self._timeouts: dict[str, float] = {}
        self._clients: dict[str, Redis] = {}
        self._own: list[Redis] = []

    def want(self, url: str, timeout: float) -> None:
        """Note that a part will talk to `url`, giving up after `timeout` seconds."""
        self._timeouts[url] = min(timeout, self._timeouts.get(url, timeout))

    @property
    def urls(self) -> list[str]:
        """Every Redis server a part talks to (the click stream's is one of them)."""
        return list(self._timeouts)

    def client(self, url: str) -> Redis:
        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = node_client(url, self._timeouts[url])
        return client

    def dedicated(self, url: str, timeout: float) -> Redis:
        """A client of its own for one part, for reads that block."""
        from redis.asyncio import Redis

        client = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=2.0)
        self._own.append(client)
        return client

    async def close(self) -> None:
        for client in [*self._clients.values(), *self._own]:
            await client.aclose()


@dataclass(frozen=True, slots=True)
class Parts:
    """Everything kurz is made of, for one process."""

    settings: Settings
    clock: Clock
    db: Database
    redis: RedisClients
    cache: TieredCache[Target]
    targets: Targets
    # The domains, in memory, for picking a visit's by its Host.
    domains: Domains
    limits: ServiceLimits
    visits: Visits
    # The use cases REST and gRPC call alike.
    access: Access
    keys: Keys
    links: Links
    # Many links in one request, over `links` (docs/batch.md).
    batches: Batches
    # The domains' use cases (admins').
    domain_admin: DomainAdmin
    users: Users
    stats: Stats
    # Links and their statistics taken out (kurz export, GET /api/v1/export).
    exports: Exports
    # Links and their statistics brought in (kurz import, POST /api/v1/imports).
    imports: Imports
    # The audit log's reading side and retention.
    audit: AuditLog
    # Argon2id, shared so that its `work` counts every hash (tests pass a cheap Cost).
    passwords: Passwords
    sessions: Sessions
    idempotency: Idempotency
    jobs: JobStore
    # What a worker runs, each domain's jobs registered by its scheduled.py.
    registry: Registry
    # Webhooks: the endpoints' use cases, and where events become deliveries (in the
    # transaction of the change); the sender's connections close with the parts.
    webhooks: Webhooks
    outbox: Outbox
    webhook_sender: Sender
    # Where this kurz answers: targets there are refused (they would loop).
    own_origins: Origins
    # None when KURZ_ANALYTICS is off.
    analytics: Analytics | None = None
    # Where visitors are (kurz.geo); None when KURZ_GEOIP is off. Its data loads when
    # first asked, or when the web app warms it at start.
    locator: Locator | None = None


# The modules of kurz[grpc]'s distributions that kurz.grpc imports.
_GRPC_MODULES = ("grpc", "grpc_health.v1", "grpc_reflection.v1alpha", "google.rpc.status_pb2")


def installed(settings: Settings) -> Settings:
    """`settings` as this install can run them: each setting's extra imported, or
    MissingExtra naming it. gRPC, on by default, is turned off without kurz[grpc],
    unless KURZ_GRPC_PORT asks for it."""
    if not settings.is_sqlite:
        need("asyncpg", extra="postgres", because="KURZ_DATABASE_URL is PostgreSQL")
    if settings.redis_url:
        need("redis", extra="redis", because="KURZ_REDIS_URL is set")
    if settings.cache_nodes:
        need("redis", extra="redis", because="KURZ_CACHE_NODES is set")
    if settings.grpc_port:
        try:
            for module in _GRPC_MODULES:
                need(module, extra="grpc", because=f"KURZ_GRPC_PORT is {settings.grpc_port}")
        except MissingExtra:
            if "grpc_port" in settings.model_fields_set:
                raise
            log.info("gRPC off: kurz[grpc] is not installed")
            return settings.model_copy(update={"grpc_port": 0})
    return settings


def build(
    settings: Settings, *, clock: Clock = system_clock, passwords: Passwords | None = None
) -> Parts:
    """Every part, wired; nothing connects until `running`. `passwords` defaults to
    OWASP's Argon2id cost; tests give a cheaper one. kurz.geo.GeoDataError when
    KURZ_GEOIP_DB names a file that is no MaxMind DB; kurz.extras.MissingExtra when a
    setting needs an extra that is not installed."""
    settings = installed(settings)
    geo = locator(settings.geoip, settings.geoip_db)
    db = Database.from_url(
        settings.database_url,
        pool_size=settings.database_pool_size,
        pool_timeout=settings.database_pool_timeout,
    )
    redis = RedisClients()
    node_urls = [parse_node(url)[2] for url in settings.cache_nodes]
    for url in node_urls:
        redis.want(url, settings.cache_timeout)
    if settings.redis_url:
        redis.want(settings.redis_url, settings.ratelimit_timeout)
    # The bus publishes with whatever client its server has (a write's invalidation,
    # never a redirect's wait), and sets a timeout only where nothing else did.
    bus_urls = node_urls or ([settings.redis_url] if settings.redis_url else [])

    nodes = None
    if settings.cache_nodes:
        nodes = CacheNodes(
            settings.cache_nodes,
            points=settings.cache_points,
            balance=settings.cache_balance,
            timeout=settings.cache_timeout,
            clients={url: redis.client(url) for url in node_urls},
        )
    bus = None
    if bus_urls:
        bus = InvalidationBus(
            bus_urls,
            timeout=settings.cache_timeout,
            publishers={url: redis.client(url) for url in bus_urls},
        )
    cache = target_cache(settings, db, nodes=nodes, bus=bus)
    targets = Targets(cache)
    limits = ServiceLimits.of(
        settings, clock, redis.client(settings.redis_url) if settings.redis_url else None
    )
    jobs = JobStore(db, clock)
    signing = SigningKeys(settings.webhook_key, file=key_file(settings.database_url))
    outbox = Outbox(jobs=jobs, clock=clock, base_url=settings.base_url)
    clicks = Clicks(db=db, jobs=jobs, outbox=outbox, clock=clock, base_url=settings.base_url)
    analytics = None
    if settings.analytics:
        analytics = Analytics(
            db=db,
            clock=clock,
            queue_size=settings.analytics_queue_size,
            # Longer than a consumer's blocking read (1 s).
            redis=redis.dedicated(settings.redis_url, 10.0) if settings.redis_url else None,
            claim_idle=settings.analytics_claim_idle,
            journal=place(settings),
            locate=geo.place if geo is not None else None,
            country_header=settings.geoip_header,
            trusted=settings.trusted_proxies,
            follower=clicks.recorded,
        )
    domains = Domains(
        db=db,
        base_url=settings.base_url,
        instance=Redirects(
            settings.root_redirect or None,
            settings.not_found_redirect or None,
            settings.expired_redirect or None,
            settings.used_up_redirect or None,
        ),
        refuse_unknown=settings.unknown_host == "refuse",
    )
    cache.on_heard = domains.heard
    passwords = passwords or Passwords()
    visits = Visits(
        domains=domains,
        targets=targets,
        db=db,
        clock=clock,
        limits=limits,
        clicks=analytics.recorder if analytics is not None else None,
        # Sticky variants: the visitor hash analytics counts by (with analytics off, a
        # salt of this process's own, which other processes do not share).
        visitors=analytics.salt if analytics is not None else DailySalt(clock),
        passwords=passwords,
        # Targeting by country and city, located as click analytics locates them.
        places=Places(
            locate=geo.place if geo is not None else None,
            client_ip=limits.client_ip,
            header=settings.geoip_header,
            trusted=settings.trusted_proxies,
        ),
    )
    idempotency = Idempotency(
        db, clock, ttl=settings.idempotency_ttl, lock_timeout=settings.idempotency_lock_timeout
    )
    own_origins = Origins.of(base_url=settings.base_url, host=settings.host, port=settings.port)
    links = Links(
        db=db,
        idempotency=idempotency,
        clock=clock,
        base_url=settings.base_url,
        own=own_origins,
        cache=targets,
        passwords=passwords,
        qr=QrCodes(),
        events=outbox,
    )
    principals: LRUCache[str, KeyCheck] | None = None
    if settings.auth_cache_ttl:
        # API keys checked lately, by secret hash (KURZ_AUTH_CACHE_TTL).
        principals = LRUCache(10_000, ttl=settings.auth_cache_ttl, timer=clock)
    registry = Registry()
    link_jobs.register(
        registry,
        db=db,
        clock=clock,
        targets=targets,
        grace=settings.expired_link_grace,
        events=outbox,
    )
    sender = Sender(allow_private=settings.webhook_allow_private, timeout=settings.webhook_timeout)
    webhook_jobs.register(
        registry,
        deliverer=Deliverer(db=db, clock=clock, keys=signing, sender=sender),
        clicks=clicks,
    )
    analytics_jobs.register(registry, db=db, clock=clock, retention=settings.analytics_retention)
    _register_purge(registry, idempotency, settings.idempotency_purge_interval)
    audit = AuditLog(db=db, clock=clock, retention=settings.audit_retention)
    sessions = Sessions(
        db=db,
        clock=clock,
        passwords=passwords,
        limits=limits,
        idle_ttl=settings.session_idle_ttl,
        absolute_ttl=settings.session_absolute_ttl,
    )
    users = Users(
        db=db,
        clock=clock,
        passwords=passwords,
        base_url=settings.base_url,
        limits=limits,
        cache=targets,
    )
    account_jobs.register(registry, audit=audit, sessions=sessions, users=users)
    imports = Imports(
        db=db,
        jobs=jobs,
        clock=clock,
        links=links,
        outbox=outbox,
        max_bytes=settings.import_max_bytes,
        allow_private=settings.import_allow_private,
    )
    imports.register(registry)
    return Parts(
        settings=settings,
        clock=clock,
        db=db,
        redis=redis,
        cache=cache,
        targets=targets,
        domains=domains,
        limits=limits,
        visits=visits,
        access=Access(db=db, limits=limits, clock=clock, principals=principals),
        keys=Keys(db=db, clock=clock),
        links=links,
        batches=Batches(links),
        domain_admin=DomainAdmin(
            db=db,
            clock=clock,
            registry=domains,
            announce=cache.announce if bus is not None else None,
        ),
        users=users,
        stats=Stats(db=db, clock=clock, default_host=domains.default.host),
        exports=Exports(db=db, clock=clock, base_url=settings.base_url),
        imports=imports,
        audit=audit,
        passwords=passwords,
        sessions=sessions,
        idempotency=idempotency,
        jobs=jobs,
        registry=registry,
        webhooks=Webhooks(
            db=db,
            clock=clock,
            jobs=jobs,
            keys=signing,
            allow_private=settings.webhook_allow_private,
        ),
        outbox=outbox,
        webhook_sender=sender,
        own_origins=own_origins,
        analytics=analytics,
        locator=geo,
    )


def _register_purge(registry: Registry, idempotency: Idempotency, interval: float) -> None:
    """The idempotency store's expired keys, purged (a library's job: no domain owns it)."""

    @registry.job("purge-idempotency-keys")
    async def purge_idempotency_keys(_payload: dict[str, Any]) -> None:
        await idempotency.purge()

    registry.every("purge-idempotency-keys", interval, "purge-idempotency-keys")


async def _reload_every(domains: Domains, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await domains.reload()
        except Exception:
            # The database is away: the domains known stay, and the next round tries again.
            log.warning("reloading the domains failed", exc_info=True)


@asynccontextmanager
async def running(parts: Parts) -> AsyncIterator[Parts]:
    """The parts started (the schema checked first), then stopped in reverse order:
    every click queued is written before the database and Redis close."""
    await ensure_schema(parts.db)
    await parts.domains.reload()
    await parts.cache.start()
    analytics = parts.analytics
    if analytics is not None:
        await analytics.start()
    # Domains added or changed by another process (docs/domains.md).
    reloading = asyncio.create_task(_reload_every(parts.domains, parts.settings.redirect_cache_ttl))
    try:
        yield parts
    finally:
        reloading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reloading
        await parts.jobs.close()
        await parts.webhook_sender.close()
        if analytics is not None:
            await analytics.stop()
        await parts.cache.close()
        await parts.redis.close()
        await parts.db.dispose()
