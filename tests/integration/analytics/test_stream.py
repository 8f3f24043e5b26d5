"""Clicks through a Redis Stream: acknowledged only after the commit, claimed from a
consumer that died, counted exactly once; real Redis, both databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest
import sqlalchemy as sa
from redis.asyncio import Redis

from kurz.analytics.events import ClickEvent, click_event, decode, encode
from kurz.analytics.queue import batch_id
from kurz.analytics.store import Batch, ClickStore
from kurz.analytics.stream import GROUP, Backlog, StreamConsumer, StreamSink, backlog
from kurz.db import Database
from kurz.db.tables import link_clicks_hourly
from tests.support import RedisServer

AT = 1_767_229_200.0


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url, socket_timeout=5.0)
    yield client
    await client.aclose()


def clicks(n: int, *, link: int = 1) -> list[ClickEvent]:
    def click(i: int) -> ClickEvent:
        return click_event(
            link_id=link, at=AT + i, referrer_host="news.example", browser="Firefox",
            os="Linux", device="desktop", bot=False, country="DE", visitor=f"v{i}", city="Berlin",
        )  # fmt: skip

    return [click(i) for i in range(n)]


async def counted(db: Database) -> int:
    async with db.read() as conn:
        total = (await conn.execute(sa.select(sa.func.sum(link_clicks_hourly.c.clicks)))).scalar()
    return int(total or 0)


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll until `condition` holds; pytest's own timeout is the only bound."""
    while not await condition():  # noqa: ASYNC110 (state in Redis and the database)
        await asyncio.sleep(0.02)


def test_a_batch_survives_the_trip_through_json() -> None:
    events = [
        *clicks(3),
        (
            2,
            AT + 0.25,
            None,
            "Googlebot",
            "Other",
            "bot",
            True,
            None,
            "ffff",
            None,
            "https://a.example/",
        ),
    ]
    assert decode(encode(events)) == events


async def test_batches_added_are_recorded_and_acknowledged(db: Database, redis: Redis) -> None:
    sink = StreamSink(redis, key="clicks")
    consumer = StreamConsumer(redis, ClickStore(db), key="clicks", name="c1", block=0.05)
    await consumer.ensure_group()
    for n in range(5):
        await sink(batch_id(), clicks(100, link=n + 1))
    running = asyncio.create_task(consumer.run())

    async def done() -> bool:
        return await counted(db) == 500

    await until(done)
    consumer.stop()
    await running
    assert (await redis.xpending("clicks", GROUP))["pending"] == 0
    assert consumer.entries == 5


async def test_a_drain_records_what_is_in_the_stream_and_returns(
    db: Database, redis: Redis
) -> None:
    sink = StreamSink(redis, key="clicks")
    # More entries than one read takes (count=2), so the drain reads until none is left.
    for n in range(5):
        await sink(batch_id(), clicks(10, link=n + 1))
    consumer = StreamConsumer(redis, ClickStore(db), key="clicks", name="c1", count=2)
    await consumer.drain()
    assert await counted(db) == 50
    assert consumer.entries == 5
    assert (await redis.xpending("clicks", GROUP))["pending"] == 0
    # Nothing new: a second drain returns at once and records nothing.
    await consumer.drain()
    assert (consumer.entries, await counted(db)) == (5, 50)


async def test_a_dead_consumers_batches_are_claimed_and_counted_once(
    db: Database, redis: Redis
) -> None:
    sink = StreamSink(redis, key="clicks")
    store = ClickStore(db)
    dead = StreamConsumer(redis, store, key="clicks", name="dead")
    await dead.ensure_group()
    ids = [batch_id() for _ in range(4)]
    for ident in ids:
        await sink(ident, clicks(10))
    # "dead" read all four; it committed the first two and died before acknowledging
    # anything (the worst case: recorded, but pending).
    read = await redis.xreadgroup(GROUP, "dead", {"clicks": ">"}, count=10)
    assert len(read[0][1]) == 4
    await store.record([(ids[0], clicks(10)), (ids[1], clicks(10))])
    assert await counted(db) == 20

    heir = StreamConsumer(
        redis, store, key="clicks", name="heir", block=0.05, claim_idle=0.2, claim_every=0.05
    )
    running = asyncio.create_task(heir.run())

    async def claimed() -> bool:
        return heir.claimed == 4 and heir.entries == 4

    await until(claimed)
    heir.stop()
    await running
    assert await counted(db) == 40
    assert (await redis.xpending("clicks", GROUP))["pending"] == 0


async def test_a_failed_commit_is_not_acknowledged_and_is_retried(
    db: Database, redis: Redis
) -> None:
    store = ClickStore(db)
    failures = 2
    real = store.record

    async def flaky(batches: Sequence[Batch], *, behind: float = 0.0) -> int:
        nonlocal failures
        if failures:
            failures -= 1
            pending = (await redis.xpending("clicks", GROUP))["pending"]
            assert pending == 1  # read, and not acknowledged while failing
            raise ConnectionError("database away")
        return await real(batches, behind=behind)

    store.record = flaky  # type: ignore[method-assign]
    await StreamSink(redis, key="clicks")(batch_id(), clicks(7))
    consumer = StreamConsumer(redis, store, key="clicks", name="c", block=0.05, retry_after=0.01)
    running = asyncio.create_task(consumer.run())

    async def done() -> bool:
        return consumer.entries == 1

    await until(done)
    consumer.stop()
    await running
    assert failures == 0
    assert await counted(db) == 7
    assert (await redis.xpending("clicks", GROUP))["pending"] == 0


async def test_the_stream_is_trimmed_to_what_is_not_done(db: Database, redis: Redis) -> None:
    sink = StreamSink(redis, key="clicks")
    consumer = StreamConsumer(
        redis, ClickStore(db), key="clicks", name="c", block=0.05, trim_every=0.0
    )
    await consumer.ensure_group()
    for _ in range(300):
        await sink(batch_id(), clicks(1))
    running = asyncio.create_task(consumer.run())

    async def done() -> bool:
        return consumer.entries == 300

    await until(done)
    # Entries still pending: none; the next trim leaves no more than a node's worth
    # (approximate trimming removes whole nodes of 100 entries).
    await sink(batch_id(), clicks(1))

    async def trimmed() -> bool:
        # The last entry recorded first: on a slow host the trim can come before it.
        return consumer.entries == 301 and bool(await redis.xlen("clicks") <= 101)

    await until(trimmed)
    consumer.stop()
    await running
    assert await counted(db) == 301


async def test_a_consumer_makes_its_group_again_when_redis_comes_back_empty(
    db: Database, redis: Redis, redis_server: RedisServer
) -> None:
    sink = StreamSink(redis, key="clicks")
    consumer = StreamConsumer(
        redis, ClickStore(db), key="clicks", name="c1", block=0.05, retry_after=0.05
    )
    running = asyncio.create_task(consumer.run())
    await sink(batch_id(), clicks(10))

    async def first() -> bool:
        return await counted(db) == 10

    await until(first)
    # No persistence: the stream and its group are gone with the process.
    redis_server.kill()
    await asyncio.sleep(0.2)
    redis_server.start()
    await sink(batch_id(), clicks(5, link=2))

    async def second() -> bool:
        return await counted(db) == 15

    await until(second)
    consumer.stop()
    await running
    assert (await redis.xpending("clicks", GROUP))["pending"] == 0


async def test_the_backlog_counts_batches_unread_and_unacknowledged(
    db: Database, redis: Redis
) -> None:
    assert await backlog(redis, key="clicks") == Backlog(0, 0)
    sink = StreamSink(redis, key="clicks")
    for n in range(3):
        await sink(batch_id(), clicks(2, link=n + 1))
    # No recorder has made the group yet: every batch is unread.
    assert await backlog(redis, key="clicks") == Backlog(3, 0)
    await redis.xgroup_create("clicks", GROUP, id="0")
    taken = await redis.xreadgroup(GROUP, "c1", {"clicks": ">"}, count=1)
    assert await backlog(redis, key="clicks") == Backlog(2, 1)
    await redis.xack("clicks", GROUP, taken[0][1][0][0])
    await StreamConsumer(redis, ClickStore(db), key="clicks", name="c2").drain()
    assert await backlog(redis, key="clicks") == Backlog(0, 0)
