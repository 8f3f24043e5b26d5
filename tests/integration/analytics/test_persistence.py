"""Scaled out, clicks not yet consumed live only in Redis: a Redis that keeps nothing
on disk loses them when it restarts, so kurz says so when it starts."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from kurz.analytics.pipeline import Analytics
from kurz.db import Database
from tests.conftest import unavailable
from tests.support import FakeClock, RedisServer


def own_redis(*options: str) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed")
    server = RedisServer(options=options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    yield from own_redis("--appendonly", "yes", "--dir", str(tmp_path))


@pytest.fixture
def managed_redis() -> Iterator[RedisServer]:
    """As managed services often are: CONFIG renamed away."""
    yield from own_redis("--rename-command", "CONFIG", "")


async def warnings_at_start(
    sqlite_url: str, redis_url: str, caplog: pytest.LogCaptureFixture
) -> list[str]:
    db = Database.from_url(sqlite_url)
    redis = Redis.from_url(redis_url)
    analytics = Analytics(db=db, clock=FakeClock(), queue_size=100, redis=redis)
    caplog.set_level(logging.WARNING, logger="kurz.analytics")
    try:
        await analytics.start()
        assert analytics.persistence_check is not None
        await analytics.persistence_check
    finally:
        await analytics.stop()
        await redis.aclose()
        await db.dispose()
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


async def test_a_redis_without_persistence_is_warned_of(
    sqlite_url: str, redis_available: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The test Redis keeps nothing on disk (save "" and appendonly no).
    warned = await warnings_at_start(sqlite_url, redis_available, caplog)
    assert len(warned) == 1, warned
    assert "lost if it restarts" in warned[0]
    assert "appendonly yes" in warned[0]


async def test_a_redis_with_appendonly_is_not(
    sqlite_url: str, durable_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    assert await warnings_at_start(sqlite_url, durable_redis.url, caplog) == []


async def test_a_redis_that_hides_its_config_is_warned_of_too(
    sqlite_url: str, managed_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    warned = await warnings_at_start(sqlite_url, managed_redis.url, caplog)
    assert len(warned) == 1, warned
    assert "could not check" in warned[0]
    assert "appendonly yes" in warned[0]
