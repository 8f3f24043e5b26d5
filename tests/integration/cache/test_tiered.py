"""L1 → L2 → load: single-flight, write-back, invalidation, and two processes' L1s."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from kurz.cache import CacheNodes, InvalidationBus, Lifetimes, LRUCache, TieredCache
from tests.integration.cache.test_nodes import until
from tests.support import FakeClock, RedisServer


@dataclass(frozen=True)
class Value:
    version: int
    text: str


class ValueCodec:
    def encode(self, value: Value) -> bytes:
        return json.dumps([value.version, value.text]).encode()

    def decode(self, payload: bytes) -> Value:
        version, text = json.loads(payload)
        return Value(version, text)

    def version(self, value: Value) -> int:
        return value.version


@dataclass
class Source:
    """The store behind the cache: what `load` reads, and how often it was asked."""

    rows: dict[str, Value] = field(default_factory=dict)
    loads: int = 0
    # Held shut, loads wait on it: a test can act while a load is under way.
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.gate.set()

    async def load(self, key: str) -> Value | None:
        self.loads += 1
        # What the row held when the load read it, delivered once the gate opens.
        value = self.rows.get(key)
        await self.gate.wait()
        return value

    def change(self, key: str, text: str) -> Value:
        old = self.rows.get(key)
        self.rows[key] = Value((old.version if old else 0) + 1, text)
        return self.rows[key]


Make = Callable[[Source], Awaitable[TieredCache[Value]]]


@pytest.fixture(params=["L1 only", "L1 and L2"])
async def make(
    request: pytest.FixtureRequest, redis_nodes: list[RedisServer]
) -> AsyncIterator[Make]:
    urls = [server.url for server in redis_nodes]
    made: list[TieredCache[Value]] = []

    async def build(source: Source) -> TieredCache[Value]:
        with_l2 = request.param == "L1 and L2"
        cache = TieredCache(
            load=source.load,
            codec=ValueCodec(),
            l1=LRUCache(100),
            l2=CacheNodes(urls, probe_interval=0.05) if with_l2 else None,
            bus=InvalidationBus(urls, heartbeat=1.0) if with_l2 else None,
            lifetimes=Lifetimes(l1=3_600, missing=3_600, l2=3_600),
        )
        await cache.start()
        made.append(cache)
        return cache

    try:
        yield build
    finally:
        for cache in made:
            await cache.close()


async def test_concurrent_misses_load_once_and_fill_l1(make: Make) -> None:
    source = Source({"k": Value(1, "a")})
    cache = await make(source)
    source.gate.clear()
    readers = [asyncio.create_task(cache.get("k")) for _ in range(50)]
    await until(lambda: source.loads == 1, "the first reader starts the load")
    source.gate.set()
    assert await asyncio.gather(*readers) == [Value(1, "a")] * 50
    assert source.loads == 1
    assert await cache.get("k") == Value(1, "a")
    assert source.loads == 1
    assert cache.l1.get("k") == Value(1, "a")


async def test_a_reader_that_gives_up_does_not_cancel_the_load(make: Make) -> None:
    source = Source({"k": Value(1, "a")})
    cache = await make(source)
    source.gate.clear()
    impatient = asyncio.create_task(cache.get("k"))
    patient = asyncio.create_task(cache.get("k"))
    await until(lambda: source.loads == 1, "the load starts")
    impatient.cancel()
    source.gate.set()
    assert await patient == Value(1, "a")
    with pytest.raises(asyncio.CancelledError):
        await impatient
    assert source.loads == 1


async def test_unknown_keys_are_remembered_as_missing(make: Make) -> None:
    source = Source()
    cache = await make(source)
    for _ in range(10):
        assert await cache.get("nope") is None
    assert source.loads == 1


async def test_a_creation_ends_a_remembered_miss(make: Make) -> None:
    source = Source()
    cache = await make(source)
    assert await cache.get("k") is None
    created = source.change("k", "new")
    await cache.invalidate("k", created.version)
    assert await cache.get("k") == created


async def test_a_change_during_a_load_is_not_undone_by_it(make: Make) -> None:
    source = Source({"k": Value(1, "old")})
    cache = await make(source)
    source.gate.clear()
    reader = asyncio.create_task(cache.get("k"))
    await until(lambda: source.loads == 1, "the load has read the old row")
    changed = source.change("k", "new")
    await cache.invalidate("k", changed.version)
    source.gate.set()
    # The reader that started first may see the old value ...
    assert await reader == Value(1, "old")
    # ... but no tier keeps it.
    assert await cache.get("k") == changed
    assert source.loads == 2


async def test_a_second_process_reads_what_the_first_wrote_back(
    redis_nodes: list[RedisServer],
) -> None:
    urls = [server.url for server in redis_nodes]
    source = Source({"k": Value(1, "a")})
    caches = [
        TieredCache(
            load=source.load,
            codec=ValueCodec(),
            l1=LRUCache(100),
            l2=CacheNodes(urls),
            bus=InvalidationBus(urls, heartbeat=1.0),
        )
        for _ in range(2)
    ]
    try:
        for cache in caches:
            await cache.start()
        assert await caches[0].get("k") == Value(1, "a")
        # From L2: the store is not asked again.
        assert await caches[1].get("k") == Value(1, "a")
        assert source.loads == 1
    finally:
        for cache in caches:
            await cache.close()


async def test_a_change_in_one_process_reaches_the_other_process_l1(
    redis_nodes: list[RedisServer],
) -> None:
    urls = [server.url for server in redis_nodes]
    source = Source({"k": Value(1, "old")})
    first, second = (
        TieredCache(
            load=source.load,
            codec=ValueCodec(),
            l1=LRUCache(100),
            l2=CacheNodes(urls),
            bus=InvalidationBus(urls, heartbeat=1.0),
            lifetimes=Lifetimes(l1=3_600),
        )
        for _ in range(2)
    )
    try:
        await first.start()
        await second.start()
        await until(lambda: second.bus is not None and second.bus.subscriptions == 3, "listening")
        assert await second.get("k") == Value(1, "old")
        changed = source.change("k", "new")
        await first.invalidate("k", changed.version)
        await until(lambda: "k" not in second.l1, "the second process drops its copy")
        assert await second.get("k") == changed
    finally:
        await first.close()
        await second.close()


async def test_a_process_that_hears_nothing_keeps_entries_briefly(
    redis_nodes: list[RedisServer],
) -> None:
    urls = [server.url for server in redis_nodes]
    source = Source({"k": Value(1, "a"), "j": Value(1, "b")})
    # L1's own timer, moved by the test: "briefly" is measured, never waited for.
    timer = FakeClock()
    cache = TieredCache(
        load=source.load,
        codec=ValueCodec(),
        l1=LRUCache(100, timer=timer),
        l2=CacheNodes(urls, fail_after=1),
        bus=InvalidationBus(urls, heartbeat=1.0),
        lifetimes=Lifetimes(l1=3_600, deaf=0.2),
    )
    try:
        await cache.start()
        await until(lambda: cache.bus is not None and cache.bus.listening, "listening")
        assert await cache.get("k") == Value(1, "a")
        for server in redis_nodes:
            server.kill()
        # Deaf: what it held is dropped at once ...
        await until(lambda: "k" not in cache.l1, "L1 is emptied when no change can be heard")
        # ... and what it loads now (every node down: from the store) is kept briefly.
        assert await cache.get("j") == Value(1, "b")
        timer.advance(0.1)
        assert "j" in cache.l1
        timer.advance(0.2)
        assert "j" not in cache.l1, "a deaf entry expires after `deaf` seconds"
        assert source.loads == 2
    finally:
        await cache.close()
