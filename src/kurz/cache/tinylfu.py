"""An LRU cache that admits a new key only if it is asked for more often than its victim.

TinyLFU admission (ADR 0005): when the cache is full, a new key may push out the
least recently used entry only if a frequency sketch says the newcomer was asked for
more often lately. A crawler walking every code once, or a flood of one-off codes, then
passes through without flushing the popular links.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Hashable

from kurz.cache.lru import _NO_DEADLINE, Absent, K, LRUCache, V
from kurz.cache.sketch import CountMinSketch

# Caffeine's answer to a victim made to look popular (hash flooding, or just a stale
# count): a candidate that is warm, but not warmer than the victim, still gets in one
# time in 128, so that no victim holds its place for good.
_WARM = 6
_WARM_ODDS = 1 / 128


def _not_yet(key: Hashable) -> None:
    """What reads count into until the cache is half full (see TinyLFUCache)."""


class TinyLFUCache(LRUCache[K, V]):
    """LRUCache with TinyLFU admission; reads, bounds, TTLs and negative entries as there.

    Every `get` and `lookup`, hit or miss, counts the key in the sketch; `put` does not,
    since in read-through use the miss just before it has already counted it. Counting
    starts once the cache is half full, as in Caffeine: until it is full no put is
    judged, and a cache that never fills (a small deployment) then pays one empty call
    per read instead of a sketch update.

    A `put` of a key already cached always succeeds (a changed link must never be
    served stale), and so does any `put` while there is room. Only a new key that would
    evict is judged, against every entry it would evict (one, or several when a large
    value needs the bytes): an expired victim goes for nothing; a live one must be
    estimated strictly less frequent, else the put is dropped (`rejections` counts
    them). `put_missing` is judged the same way: a flood of distinct unknown codes is
    what admission keeps out, while one unknown code asked for again and again soon
    earns its negative entry.
    """

    __slots__ = ("_record", "_rng", "_sketch", "rejections")

    def __init__(
        self,
        max_entries: int,
        *,
        max_bytes: int | None = None,
        sizeof: Callable[[V], int] | None = None,
        ttl: float | None = None,
        timer: Callable[[], float] = time.monotonic,
        sketch: CountMinSketch | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(max_entries, max_bytes=max_bytes, sizeof=sizeof, ttl=ttl, timer=timer)
        self._sketch = CountMinSketch.for_capacity(max_entries) if sketch is None else sketch
        # Set to the sketch's bound increment once the cache is half full.
        self._record: Callable[[K], None] = _not_yet
        self._rng = random.Random() if rng is None else rng
        self.rejections = 0

    @property
    def sketch(self) -> CountMinSketch:
        return self._sketch

    def lookup(self, key: K) -> V | Absent:
        self._record(key)
        return LRUCache.lookup(self, key)

    def get(self, key: K) -> V | None:
        # LRUCache.get(self, ...), not super().get: super() costs a lookup per call.
        self._record(key)
        return LRUCache.get(self, key)

    def put(
        self, key: K, value: V, ttl: float | None = None, refresh_after: float | None = None
    ) -> None:
        # Bounded by bytes, LRUCache.put goes through _store_sized: judged there.
        if self._sizeof is not None:
            LRUCache.put(self, key, value, ttl, refresh_after)
            return
        if not self._admits(key, 0):
            self.rejections += 1
            return
        LRUCache.put(self, key, value, ttl, refresh_after)
        if self._record is _not_yet:
            self._count_once_half_full()

    def _store_sized(
        self,
        key: K,
        value: V | Absent,
        ttl: float | None,
        size: int,
        refresh_after: float | None = None,
    ) -> None:
        if not self._admits(key, size):
            self.rejections += 1
            return
        LRUCache._store_sized(self, key, value, ttl, size, refresh_after)
        if self._record is _not_yet:
            self._count_once_half_full()

    def _count_once_half_full(self) -> None:
        if 2 * len(self._entries) >= self._max_entries or (
            self._max_bytes is not None and 2 * self._bytes >= self._max_bytes
        ):
            self._record = self._sketch.increment

    def _admits(self, key: K, size: int) -> bool:
        entries = self._entries
        if key in entries:
            return True
        excess = len(entries) + 1 - self._max_entries
        excess_bytes = 0 if self._max_bytes is None else self._bytes + size - self._max_bytes
        if excess <= 0 and excess_bytes <= 0:
            return True
        if self._max_bytes is not None and size > self._max_bytes:
            return True  # it can never fit: LRUCache drops it without evicting anything
        estimate = self._sketch.estimate
        wanted = estimate(key)
        now = self._timer()
        sizes = self._sizes
        # Taken without the lock: the decision is a heuristic, and the store after it
        # keeps the bounds exact whatever the victims are by then.
        try:
            for victim, (_, _, deadline) in entries.items():  # least recently used first
                if (deadline is _NO_DEADLINE or now < deadline) and estimate(victim) >= wanted:
                    return wanted >= _WARM and self._rng.random() < _WARM_ODDS
                excess -= 1
                excess_bytes -= sizes.get(victim, 0)
                if excess <= 0 and excess_bytes <= 0:
                    break
        except (RuntimeError, KeyError):  # another thread changed the entries meanwhile
            pass  # no verdict: admit, as plain LRU would
        return True
