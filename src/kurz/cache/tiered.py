"""Two cache tiers in front of a store: L1 in process, L2 on Redis nodes, then the load.

Concurrent misses for one key share one load (single-flight), and what it loads is
written back to both tiers. An L1 entry read in the last quarter of its lifetime is
reloaded in the background (refresh-ahead), while readers are served the cached
value: a hot link never makes its visitors wait for its reload, and no entry is
served past its lifetime. Given `load_many`, the entries due are reloaded together,
up to `refresh_batch` keys in one call, by one background task: entries cached
together fall due together, and one statement for all of them keeps ahead of their
expiry where one load each, behind a busy event loop, fell behind.

A change is invalidated in this process's L1, in L2 (a tombstone on every node) and,
over the bus, in every other process's L1. How long a process can serve a value after
the change: docs/decisions/0007-tiered-cache.md.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from kurz.cache.bus import InvalidationBus
from kurz.cache.lru import MISSING, Absent, LRUCache
from kurz.cache.nodes import FOREVER, CacheNodes

log = logging.getLogger("kurz.cache")

V = TypeVar("V")

# LRUCache's own lookup, for any L1: the read without TinyLFUCache's count. Bound once
# here: subscripting LRUCache[str, V] in get() built a generic alias on every miss
# (ADR 0007, "The L1 read path").
_uncounted: Callable[[LRUCache[Any, Any], Any], Any] = LRUCache.lookup


class Codec(Protocol[V]):
    """How values travel to L2, and which version of their source they hold."""

    def encode(self, value: V) -> bytes: ...

    def decode(self, payload: bytes) -> V | None:
        """The value in `payload`; None for an entry of another shape (a miss)."""
        ...

    def version(self, value: V) -> int: ...


@dataclass(eq=False)
class _Flight(Generic[V]):
    task: asyncio.Task[V | None] | None = None
    # Invalidated while loading: hand the value to those waiting, but don't keep it.
    stale: bool = False


@dataclass(frozen=True, slots=True)
class Lifetimes:
    """How long each kind of entry is kept, in seconds."""

    l1: float = 30.0
    # A "no such key" in L1; L2 keeps no negative entries.
    missing: float = 5.0
    l2: float = 30 * 86_400.0
    # L1 entries put while the bus is down: nothing could tell us of a change.
    deaf: float = 1.0
    # The share of an L1 entry's lifetime after which a read reloads it in the background.
    refresh: float = 0.75


@dataclass(eq=False)
class TieredCache(Generic[V]):
    """L1 → L2 → load, with single-flight loads and invalidation across processes."""

    load: Callable[[str], Awaitable[V | None]]
    codec: Codec[V]
    l1: LRUCache[str, V]
    l2: CacheNodes | None = None
    bus: InvalidationBus | None = None
    lifetimes: Lifetimes = field(default_factory=Lifetimes)
    # Where in [0, 1) each L1 entry's lifetime falls between 3/4 and all of it.
    jitter: Callable[[], float] = random.random
    # Refreshes under way at most: entries cached together fall due together, and
    # their reloads must leave the database's connections to misses and writes.
    max_refreshes: int = 4
    # The values of many keys at once (those it has no value for are missing): when
    # given, refreshes go through it in batches instead.
    load_many: Callable[[Sequence[str]], Awaitable[Mapping[str, V]]] | None = None
    refresh_batch: int = 256
    # Told of every key another process publishes, after it is dropped here: for what
    # else a process keeps in memory and may be told to read afresh.
    on_heard: Callable[[str], None] | None = None
    _flights: dict[str, _Flight[V]] = field(default_factory=dict, init=False)
    _refreshes: int = field(default=0, init=False)
    # Keys due for a batched refresh, then those in the batch under way.
    _due: dict[str, _Flight[V]] = field(default_factory=dict, init=False)
    _batch: dict[str, _Flight[V]] = field(default_factory=dict, init=False)
    _batcher: asyncio.Task[None] | None = field(default=None, init=False)
    # Plain ints for kurz.metrics, counted past L1 only (an L1 hit costs nothing more).
    l2_hits: int = field(default=0, init=False)
    l2_misses: int = field(default=0, init=False)
    loads_found: int = field(default=0, init=False)
    loads_missing: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.l1.on_refresh = self._refresh

    async def get(self, key: str, *, counted: bool = False) -> V | None:
        """The value, from the first tier that has it; None if the store has none.

        `counted`: this request has already read L1 (and an admission filter there
        has counted it), so read it again without counting the request twice.
        """
        cached: V | Absent = _uncounted(self.l1, key) if counted else self.l1.lookup(key)
        if not isinstance(cached, Absent):
            return cached
        if cached is MISSING:
            return None
        flight = self._flights.get(key) or self._fly(key, asyncio.get_running_loop())
        assert flight.task is not None
        # Shielded: a caller that gives up does not cancel the load for the others.
        return await asyncio.shield(flight.task)

    def _fly(self, key: str, loop: asyncio.AbstractEventLoop) -> _Flight[V]:
        flight = self._flights[key] = _Flight()
        flight.task = loop.create_task(self._fill(key, flight))
        return flight

    def _refresh(self, key: str) -> bool:
        """L1 read `key` past its refresh time: load it again, unless a load is under
        way. False when none can start now (too many under way): ask again later."""
        if key in self._flights or key in self._due or key in self._batch:
            return True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return True  # read outside the event loop: the entry just expires
        if self.load_many is not None:
            self._due[key] = _Flight()
            if self._batcher is None:
                self._batcher = loop.create_task(self._refresh_due())
            return True
        if self._refreshes >= self.max_refreshes:
            return False
        task = self._fly(key, loop).task
        assert task is not None
        self._refreshes += 1
        task.add_done_callback(functools.partial(self._refreshed, key))
        return True

    def _refreshed(self, key: str, task: asyncio.Task[Any]) -> None:
        self._refreshes -= 1
        # Nobody may await a refresh: its failure is told here. The entry keeps its
        # value until it expires, and a read after that loads it again.
        if not task.cancelled() and task.exception() is not None:
            log.warning("refreshing %r failed", key, exc_info=task.exception())

    async def _refresh_due(self) -> None:
        """Reload the keys due, a batch at a time, until none is left."""
        assert self.load_many is not None
        try:
            while self._due:
                keys = list(itertools.islice(self._due, self.refresh_batch))
                self._batch = {key: self._due.pop(key) for key in keys}
                try:
                    values = await self.load_many(keys)
                except Exception:
                    # The entries keep their values until they expire, and a read after
                    # that loads them again.
                    log.warning("refreshing %d entries failed", len(keys), exc_info=True)
                    continue
                finally:
                    batch, self._batch = self._batch, {}
                for key, flight in batch.items():
                    if not flight.stale:
                        self._keep(key, values.get(key))
        finally:
            self._batcher = None

    async def settle(self) -> None:
        """Wait for the loads under way (a refresh nobody awaits, before closing)."""
        tasks = [flight.task for flight in self._flights.values() if flight.task is not None]
        if self._batcher is not None:
            tasks.append(self._batcher)
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _fill(self, key: str, flight: _Flight[V]) -> V | None:
        try:
            value = await self._from_l2(key)
            if value is None:
                value = await self.load(key)
                if value is None:
                    self.loads_missing += 1
                else:
                    self.loads_found += 1
                if value is not None and self.l2 is not None:
                    await self.l2.put(
                        key,
                        self.codec.encode(value),
                        version=self.codec.version(value),
                        ttl=self.lifetimes.l2,
                    )
            if not flight.stale:
                self._keep(key, value)
            return value
        finally:
            del self._flights[key]

    async def _from_l2(self, key: str) -> V | None:
        if self.l2 is None:
            return None
        payload = await self.l2.get(key)
        value = None
        if payload is not None:
            try:
                value = self.codec.decode(payload)
            except Exception:
                # Damaged, or a codec's bug: the store has the truth.
                log.warning("undecodable L2 entry for %r; loading it instead", key, exc_info=True)
        if value is None:
            self.l2_misses += 1
        else:
            self.l2_hits += 1
        return value

    def _keep(self, key: str, value: V | None) -> None:
        lifetimes = self.lifetimes
        deaf = self.bus is not None and not self.bus.listening
        if value is None:
            ttl = lifetimes.missing
            self.l1.put_missing(key, min(ttl, lifetimes.deaf) if deaf else ttl)
        else:
            # Between 3/4 of the lifetime and all of it: entries cached in one burst (a
            # restart, a spike) then expire, and are refreshed, spread out.
            ttl = lifetimes.l1 * (0.75 + 0.25 * self.jitter())
            if deaf:
                ttl = min(ttl, lifetimes.deaf)
            self.l1.put(key, value, ttl, ttl * lifetimes.refresh)

    def drop(self, key: str) -> None:
        """Forget `key` in this process's L1, and in any load of it under way."""
        self.l1.discard(key)
        for flights in (self._flights, self._due, self._batch):
            flight = flights.get(key)
            if flight is not None:
                flight.stale = True

    async def invalidate(self, key: str, version: int = FOREVER) -> None:
        """The source of `key` changed to `version` (FOREVER: deleted): drop it everywhere."""
        self.drop(key)
        if self.l2 is not None:
            await self.l2.invalidate(key, version)
            # Again: a load in this process may have read L2 before the tombstone landed.
            self.drop(key)
        if self.bus is not None:
            # Only after L2: a process that drops its L1 on this message must not find
            # the old value in L2 when it reads the key again.
            await self.bus.publish(key)

    async def start(self) -> None:
        if self.bus is not None:
            on_key = self.drop if self.on_heard is None else self._heard
            await self.bus.start(on_key=on_key, on_gap=self.clear_l1)

    def _heard(self, key: str) -> None:
        self.drop(key)
        assert self.on_heard is not None
        self.on_heard(key)

    async def announce(self, key: str) -> None:
        """Tell every other process of `key` (their `on_heard`), caching nothing."""
        if self.bus is not None:
            await self.bus.publish(key)

    def clear_l1(self) -> None:
        self.l1.clear()
        for flight in itertools.chain(
            self._flights.values(), self._due.values(), self._batch.values()
        ):
            flight.stale = True

    async def close(self) -> None:
        await self.settle()
        if self.bus is not None:
            await self.bus.close()
        if self.l2 is not None:
            await self.l2.close()
