"""Refresh-ahead: a hot entry is reloaded in the background before it expires, and
nobody waits for that load; the lifetime still bounds what is served (ADR 0007)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import pytest

from kurz.cache import Lifetimes, LRUCache, TieredCache
from tests.support import FakeClock

LIFETIME = 40.0


class Codec:
    def encode(self, value: str) -> bytes:
        return value.encode()

    def decode(self, payload: bytes) -> str:
        return payload.decode()

    def version(self, value: str) -> int:
        return 1


@dataclass
class Source:
    """What `load` reads; loads wait on `gate` while it is shut."""

    rows: dict[str, str] = field(default_factory=dict)
    loads: int = 0
    fail: bool = False
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.gate.set()

    async def load(self, key: str) -> str | None:
        self.loads += 1
        value = self.rows.get(key)
        await self.gate.wait()
        if self.fail:
            raise ConnectionError("the database is away")
        return value


def cache_for(source: Source, clock: FakeClock) -> TieredCache[str]:
    # Jitter fixed at the top: every entry lives the whole lifetime, and is due for
    # its refresh after 3/4 of it.
    return TieredCache(
        load=source.load,
        codec=Codec(),
        l1=LRUCache(100, timer=clock),
        lifetimes=Lifetimes(l1=LIFETIME),
        jitter=lambda: 1.0,
    )


async def test_a_read_late_in_the_lifetime_reloads_in_the_background() -> None:
    clock, source = FakeClock(), Source({"k": "v1"})
    cache = cache_for(source, clock)
    assert await cache.get("k") == "v1"
    source.rows["k"] = "v2"  # changed, and no invalidation reached this process
    clock.advance(0.75 * LIFETIME - 0.1)
    assert await cache.get("k") == "v1"
    assert source.loads == 1
    clock.advance(0.1)
    source.gate.clear()
    # Due: every reader is served the cached value at once, and one load starts.
    assert [cache.l1.get("k") for _ in range(3)] == ["v1"] * 3
    assert await cache.get("k") == "v1"
    await asyncio.sleep(0)  # the load task's first step
    assert source.loads == 2
    source.gate.set()
    await cache.settle()
    assert cache.l1.get("k") == "v2"
    # A new lifetime from the reload.
    clock.advance(LIFETIME - 0.1)
    assert cache.l1.lookup("k") == "v2"
    await cache.settle()
    assert source.loads == 3  # that read was due again


async def test_nothing_is_served_past_the_lifetime_while_the_reload_hangs() -> None:
    clock, source = FakeClock(), Source({"k": "v1"})
    cache = cache_for(source, clock)
    assert await cache.get("k") == "v1"
    source.rows["k"] = "v2"
    source.gate.clear()
    clock.advance(0.8 * LIFETIME)
    assert cache.l1.get("k") == "v1"
    clock.advance(0.2 * LIFETIME)
    assert cache.l1.get("k") is None
    # A reader past the lifetime waits for the load already under way, not a second.
    reader = asyncio.create_task(cache.get("k"))
    await asyncio.sleep(0)
    assert not reader.done()
    source.gate.set()
    assert await reader == "v2"
    assert source.loads == 2


async def test_an_invalidation_during_a_reload_drops_the_entry_for_good() -> None:
    clock, source = FakeClock(), Source({"k": "v1"})
    cache = cache_for(source, clock)
    assert await cache.get("k") == "v1"
    source.gate.clear()
    clock.advance(0.8 * LIFETIME)
    assert cache.l1.get("k") == "v1"
    await asyncio.sleep(0)
    source.rows["k"] = "v2"
    await cache.invalidate("k")
    assert cache.l1.get("k") is None
    source.gate.set()
    await cache.settle()
    # What the reload read before the change is not kept.
    assert "k" not in cache.l1
    assert await cache.get("k") == "v2"


async def test_a_failed_reload_is_logged_and_the_entry_still_expires(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, source = FakeClock(), Source({"k": "v1"})
    cache = cache_for(source, clock)
    assert await cache.get("k") == "v1"
    source.fail = True
    clock.advance(0.8 * LIFETIME)
    with caplog.at_level(logging.WARNING, logger="kurz.cache"):
        assert cache.l1.get("k") == "v1"
        await cache.settle()
    assert "refreshing 'k' failed" in caplog.text
    # One load per due entry, not one per read.
    assert [cache.l1.get("k") for _ in range(3)] == ["v1"] * 3
    assert source.loads == 2
    clock.advance(0.2 * LIFETIME)
    assert cache.l1.get("k") is None


async def test_a_cold_entry_is_not_reloaded() -> None:
    clock, source = FakeClock(), Source({"k": "v1"})
    cache = cache_for(source, clock)
    assert await cache.get("k") == "v1"
    clock.advance(LIFETIME)
    assert source.loads == 1
    assert cache.l1.get("k") is None
    assert source.loads == 1


async def test_refreshes_under_way_are_bounded_and_a_skipped_one_is_asked_again() -> None:
    clock, source = FakeClock(), Source({"a": "a1", "b": "b1"})
    cache = cache_for(source, clock)
    cache.max_refreshes = 1
    assert (await cache.get("a"), await cache.get("b")) == ("a1", "b1")
    source.gate.clear()
    clock.advance(0.8 * LIFETIME)
    assert (cache.l1.get("a"), cache.l1.get("b")) == ("a1", "b1")
    await asyncio.sleep(0)
    # One refresh at a time: b's waits, and b is served meanwhile.
    assert source.loads == 3
    assert cache.l1.get("b") == "b1"
    source.gate.set()
    await cache.settle()
    # The next read of b, still in its refresh window, asks again and gets it.
    assert cache.l1.get("b") == "b1"
    await cache.settle()
    assert source.loads == 4


@dataclass
class ManySource(Source):
    """A Source that also loads many keys in one call, as one statement would."""

    batches: list[list[str]] = field(default_factory=list)

    async def load_many(self, keys: list[str]) -> dict[str, str]:
        self.batches.append(list(keys))
        await self.gate.wait()
        if self.fail:
            raise ConnectionError("the database is away")
        return {key: self.rows[key] for key in keys if key in self.rows}


def batched_cache_for(source: ManySource, clock: FakeClock, batch: int = 256) -> TieredCache[str]:
    cache = cache_for(source, clock)
    cache.load_many = source.load_many  # type: ignore[assignment]
    cache.refresh_batch = batch
    return cache


async def fill(cache: TieredCache[str], keys: list[str]) -> None:
    for key in keys:
        assert await cache.get(key) is not None


async def test_entries_due_together_are_reloaded_in_one_batch() -> None:
    keys = [f"k{i}" for i in range(50)]
    clock, source = FakeClock(), ManySource({key: f"{key}-v1" for key in keys})
    cache = batched_cache_for(source, clock)
    await fill(cache, keys)
    source.rows = {key: f"{key}-v2" for key in keys}
    source.gate.clear()
    clock.advance(0.8 * LIFETIME)
    # Every due entry is served its cached value while the batch is under way.
    assert [cache.l1.get(key) for key in keys] == [f"{key}-v1" for key in keys]
    await asyncio.sleep(0)
    assert source.batches == [keys]
    source.gate.set()
    await cache.settle()
    assert [cache.l1.get(key) for key in keys] == [f"{key}-v2" for key in keys]
    assert source.loads == len(keys)  # the fills only: no refresh went one key at a time


async def test_a_batch_is_bounded_and_the_rest_follow_in_the_next() -> None:
    keys = [f"k{i}" for i in range(7)]
    clock, source = FakeClock(), ManySource(dict.fromkeys(keys, "v"))
    cache = batched_cache_for(source, clock, batch=3)
    await fill(cache, keys)
    clock.advance(0.8 * LIFETIME)
    for key in keys:
        cache.l1.get(key)
    await cache.settle()
    assert source.batches == [keys[0:3], keys[3:6], keys[6:7]]


async def test_a_key_invalidated_during_its_batch_is_not_kept_and_a_deleted_one_is_missing() -> (
    None
):
    clock, source = FakeClock(), ManySource({"a": "a1", "b": "b1", "c": "c1"})
    cache = batched_cache_for(source, clock)
    await fill(cache, ["a", "b", "c"])
    source.gate.clear()
    clock.advance(0.8 * LIFETIME)
    assert [cache.l1.get(key) for key in "abc"] == ["a1", "b1", "c1"]
    await asyncio.sleep(0)
    source.rows = {"a": "a2", "b": "b2"}  # b changed, c deleted
    await cache.invalidate("b")
    source.gate.set()
    await cache.settle()
    assert cache.l1.get("a") == "a2"
    # What the batch read before b's change is not kept; c is known to be gone.
    assert "b" not in cache.l1
    assert cache.l1.get("c") is None
    assert "c" in cache.l1
    assert source.loads == 3


async def test_a_failed_batch_is_logged_and_its_entries_still_expire(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, source = FakeClock(), ManySource({"a": "a1", "b": "b1"})
    cache = batched_cache_for(source, clock)
    await fill(cache, ["a", "b"])
    source.fail = True
    clock.advance(0.8 * LIFETIME)
    with caplog.at_level(logging.WARNING, logger="kurz.cache"):
        assert (cache.l1.get("a"), cache.l1.get("b")) == ("a1", "b1")
        await cache.settle()
    assert "refreshing 2 entries failed" in caplog.text
    # Asked once per entry's lifetime, not once per read.
    assert (cache.l1.get("a"), cache.l1.get("b")) == ("a1", "b1")
    await cache.settle()
    assert source.batches == [["a", "b"]]
    clock.advance(0.2 * LIFETIME)
    assert cache.l1.get("a") is None
