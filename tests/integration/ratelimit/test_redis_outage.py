"""When Redis goes away the service keeps serving, and it returns to Redis after."""

from __future__ import annotations

import logging

import httpx
import pytest
from redis.asyncio import Redis

from kurz.app import create_app
from kurz.bootstrap import build
from kurz.config import Settings
from kurz.db import READ_COMMITTED
from kurz.ratelimit import FallbackLimiter, MemoryLimiter, Policy, RedisLimiter
from tests.conftest import BASE_URL
from tests.integration.links.support import create
from tests.support import FakeClock, RedisServer

POLICY = Policy("api", limit=100, window=1, burst=100)


class Monotonic:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_fallback_switches_logs_once_and_switches_back(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    # A stopped Redis refuses at once: the timeouts need only outlast a loaded host's
    # pauses, so that the fallback starts when the test stops Redis and not before.
    client = Redis.from_url(redis_server.url, socket_timeout=10, socket_connect_timeout=10)
    monotonic = Monotonic()
    limiter = FallbackLimiter(
        RedisLimiter(client), MemoryLimiter(FakeClock()), retry_after=5.0, monotonic=monotonic
    )
    try:
        assert (await limiter.check(POLICY, "k")).remaining == 99
        assert await client.exists("kurz:rl:api:k")

        redis_server.stop()
        caplog.set_level(logging.WARNING, logger="kurz.ratelimit")
        for _ in range(10):
            assert (await limiter.check(POLICY, "k")).allowed
            monotonic.now += 1.0  # Redis is retried every 5 s meanwhile, and fails
        assert limiter.degraded
        unreachable = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(unreachable) == 1

        redis_server.start()
        monotonic.now += 5.0
        decision = await limiter.check(POLICY, "k")
        assert not limiter.degraded
        # The restarted Redis kept nothing, so its bucket is fresh: 99. The in-process
        # bucket, which took the ten checks during the outage, would say 89.
        assert decision.remaining == 99
        assert await client.exists("kurz:rl:api:k")
        assert [r for r in caplog.records if "back" in r.getMessage()]
    finally:
        await client.aclose()


async def test_a_peek_falls_back_too_and_takes_nothing(redis_server: RedisServer) -> None:
    client = Redis.from_url(redis_server.url, socket_timeout=10, socket_connect_timeout=10)
    memory = MemoryLimiter(FakeClock())
    limiter = FallbackLimiter(RedisLimiter(client), memory, monotonic=Monotonic())
    try:
        assert (await limiter.peek(POLICY, "k")).remaining == 99
        assert not await client.exists("kurz:rl:api:k")
        redis_server.stop()
        assert (await limiter.peek(POLICY, "k")).remaining == 99
        assert limiter.degraded
        assert len(memory) == 0
    finally:
        await client.aclose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_service_keeps_serving_while_redis_is_down(
    database_url: str,
    redis_server: RedisServer,
    clock: FakeClock,
) -> None:
    settings = Settings(
        database_url=database_url,
        base_url=BASE_URL,
        redis_url=redis_server.url,
        ratelimit_api="100/60s;burst=100",
        ratelimit_redirect="100/60s;burst=100",
    )
    app = create_app(build(settings, clock=clock))
    async with app.router.lifespan_context(app):
        from kurz.auth import queries as key_queries
        from kurz.auth.models import ApiKeyCreate
        from kurz.clock import utcnow

        async with app.state.kurz.db.write(READ_COMMITTED) as conn:
            key = await key_queries.create(
                conn=conn, key_in=ApiKeyCreate(name="k"), now=utcnow(clock)
            )
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {key.secret}"}
        async with httpx.AsyncClient(
            transport=transport, base_url=BASE_URL, headers=headers
        ) as client:
            link = await create(client)
            assert (await client.get(f"/{link['code']}")).status_code == 302
            redis_server.stop()
            for _ in range(5):
                assert (await client.get(f"/{link['code']}")).status_code == 302
                response = await client.get("/api/v1/links")
                assert response.status_code == 200
                assert "ratelimit" in response.headers


async def test_how_long_a_check_waits_for_redis_is_a_setting(clock: FakeClock) -> None:
    url = "redis://127.0.0.1:6379/0"
    settings = Settings.model_validate({"redis_url": url, "ratelimit_timeout": 3.0})
    parts = build(settings, clock=clock)
    try:
        kwargs = parts.redis.client(url).connection_pool.connection_kwargs
        assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (3.0, 3.0)
    finally:
        await parts.redis.close()
        await parts.db.dispose()
    assert Settings().ratelimit_timeout == 0.25


async def test_one_client_serves_every_part_that_talks_to_a_redis(clock: FakeClock) -> None:
    """The limiter, the L2 node and the bus's publisher on one URL share one client,
    whose timeout is the shortest they asked for; only the click stream has its own."""
    url = "redis://127.0.0.1:6379/0"
    settings = Settings.model_validate(
        {"redis_url": url, "cache_nodes": url, "ratelimit_timeout": 3.0, "cache_timeout": 0.5,
         "analytics": True}
    )  # fmt: skip
    parts = build(settings, clock=clock)
    try:
        shared = parts.redis.client(url)
        assert shared.connection_pool.connection_kwargs["socket_timeout"] == 0.5
        assert parts.cache.l2 is not None
        assert [node.client for node in parts.cache.l2.nodes.values()] == [shared]
        assert parts.analytics is not None
        assert parts.analytics.redis is not None
        assert parts.analytics.redis is not shared
    finally:
        await parts.redis.close()
        await parts.db.dispose()
