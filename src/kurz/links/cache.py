"""A bounded, expiring map of resolved links for the redirect path.

Deliberately simple (first in, first out): the real LRU and the distributed tier
belong to kurz.cache. The TTL bounds how long a process that did not make a change
can keep serving the old target (settings.redirect_cache_ttl).
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class BoundedTTLMap(Generic[V]):
    """At most `max_entries` values, each forgotten at most `ttl` seconds after it was put.

    Each entry lives between 3/4 of the TTL and the whole of it, at random: entries
    cached in one burst (a restart, a traffic spike) then expire spread out instead of
    all at once, which would send every one of them to the database together.
    """

    __slots__ = ("_entries", "_max", "_timer", "_ttl")

    def __init__(
        self, max_entries: int, ttl: float, *, timer: Callable[[], float] = time.monotonic
    ) -> None:
        # An OrderedDict, not a dict: a dict's first key, after many deletions from its
        # front, costs a scan of every deleted slot (16 us a put at 100,000 entries).
        self._entries: OrderedDict[str, tuple[V, float]] = OrderedDict()
        self._max = max_entries
        self._ttl = ttl
        self._timer = timer

    def get(self, key: str) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, deadline = entry
        if self._timer() >= deadline:
            self._entries.pop(key, None)
            return None
        return value

    def put(self, key: str, value: V) -> None:
        if self._max <= 0:
            return
        entries = self._entries
        entries.pop(key, None)
        while len(entries) >= self._max:
            entries.popitem(last=False)  # the oldest
        lifetime = self._ttl * (0.75 + 0.25 * random.random())
        entries[key] = (value, self._timer() + lifetime)

    def discard(self, key: str) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)
