"""The in-process cache (L1): least recently used goes first, bounded by entries and bytes.

Entries may expire (a TTL per entry) and may record that a key has no value (a
negative entry), so that a flood of unknown keys is answered here instead of by
the store behind the cache. An entry may also have a refresh time before its
expiry: a read after it is still a hit, and asks `on_refresh` to put a fresh value
meanwhile (docs/decisions/0007-tiered-cache.md).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Absent(Enum):
    """What `lookup` answers when it has no value to give."""

    NOT_CACHED = "not cached"
    # The cache was told the key has no value (put_missing), and that is still fresh.
    MISSING = "known missing"


NOT_CACHED = Absent.NOT_CACHED
MISSING = Absent.MISSING
_NO_DEADLINE = float("inf")


@dataclass(frozen=True, slots=True)
class Stats:
    hits: int
    misses: int
    evictions: int
    expirations: int
    entries: int
    bytes: int


class LRUCache(Generic[K, V]):
    """A least-recently-used cache, safe to share between asyncio tasks and threads.

    Reads take no lock: each step is one operation on an OrderedDict, atomic under the
    GIL. Writes to a cache bounded by bytes take a lock so that the byte count stays
    exact; bounded by count only, they need none. Counters are exact under asyncio and
    may miss an increment under racing threads.
    """

    __slots__ = (
        "_bytes",
        "_entries",
        "_find",
        "_lock",
        "_max_bytes",
        "_max_entries",
        "_sizeof",
        "_sizes",
        "_timer",
        "_ttl",
        "evictions",
        "expirations",
        "hits",
        "misses",
        "on_refresh",
    )

    def __init__(
        self,
        max_entries: int,
        *,
        max_bytes: int | None = None,
        sizeof: Callable[[V], int] | None = None,
        ttl: float | None = None,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 0 or (max_bytes is not None and max_bytes < 0):
            raise ValueError("max_entries and max_bytes must not be negative")
        if max_bytes is not None and sizeof is None:
            raise ValueError("max_bytes needs sizeof, the size of a value in bytes")
        # key -> (value or MISSING, refresh time, expiry); the refresh time is the
        # expiry unless a put asked for a refresh. Sizes only when bytes are counted.
        self._entries: OrderedDict[K, tuple[V | Absent, float, float]] = OrderedDict()
        self._sizes: dict[K, int] = {}
        # The entries' bound get, kept: one attribute lookup fewer on every read.
        self._find = self._entries.get
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._sizeof = sizeof
        self._ttl = ttl
        self._timer = timer
        self._lock = threading.Lock()
        self._bytes = 0
        self.hits = self.misses = self.evictions = self.expirations = 0
        # Called with a key read past its refresh time: True once a refresh is under
        # way, and then not called again for that put; False to be asked again.
        self.on_refresh: Callable[[K], bool] | None = None

    def lookup(self, key: K) -> V | Absent:
        """The value, MISSING if the key is known to have none, or NOT_CACHED."""
        entry = self._find(key)
        if entry is None:
            self.misses += 1
            return NOT_CACHED
        # Past the refresh time is the rare case: it costs the hit path nothing more.
        if entry[1] is not _NO_DEADLINE and self._timer() >= entry[1] and not self._due(key, entry):
            self.misses += 1
            return NOT_CACHED
        # try/except, not contextlib.suppress: this is the hit path, and a context
        # manager costs more than the move itself.
        try:  # noqa: SIM105
            self._entries.move_to_end(key)
        except KeyError:  # a writer dropped it meanwhile; the value read is still good
            pass
        self.hits += 1
        return entry[0]

    def get(self, key: K) -> V | None:
        """The value, or None when there is none (not cached, or known missing)."""
        # lookup() written out again: get is the redirect path's call, and one more
        # Python call would make a hit cost far more (ADR 0007, "The L1 read path").
        entry = self._find(key)
        if entry is None:
            self.misses += 1
            return None
        if entry[1] is not _NO_DEADLINE and self._timer() >= entry[1] and not self._due(key, entry):
            self.misses += 1
            return None
        try:  # noqa: SIM105
            self._entries.move_to_end(key)
        except KeyError:
            pass
        self.hits += 1
        value = entry[0]
        return None if value is MISSING else value  # type: ignore[return-value]

    def put(
        self, key: K, value: V, ttl: float | None = None, refresh_after: float | None = None
    ) -> None:
        """Keep `value` for `ttl` seconds (the cache's default when None; inf if neither);
        a read `refresh_after` seconds from now or later asks `on_refresh` for a new one."""
        if self._sizeof is not None:
            self._store_sized(key, value, ttl, self._sizeof(value), refresh_after)
            return
        entry = self._entry(value, ttl, refresh_after)
        entries = self._entries
        # Bounded by count only, a put needs no lock: each step is one atomic dict
        # operation, and a racing thread's eviction is retried by the loop.
        if key in entries:
            entries.move_to_end(key)
        entries[key] = entry
        while len(entries) > self._max_entries:
            try:
                entries.popitem(last=False)
            except KeyError:
                break
            self.evictions += 1

    def put_missing(self, key: K, ttl: float) -> None:
        """Remember for `ttl` seconds that `key` has no value."""
        self._store_sized(key, MISSING, ttl, 0)

    def discard(self, key: K) -> None:
        with self._lock:
            if self._entries.pop(key, None) is not None:
                self._bytes -= self._sizes.pop(key, 0)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._sizes.clear()
            self._bytes = 0

    def stats(self) -> Stats:
        return Stats(
            self.hits, self.misses, self.evictions, self.expirations, len(self), self._bytes
        )

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        entry = self._entries.get(key)  # type: ignore[arg-type]
        return entry is not None and (entry[2] is _NO_DEADLINE or self._timer() < entry[2])

    def _entry(
        self, value: V | Absent, ttl: float | None, refresh_after: float | None
    ) -> tuple[V | Absent, float, float]:
        lifetime = self._ttl if ttl is None else ttl
        if lifetime is None:
            return (value, _NO_DEADLINE, _NO_DEADLINE)
        now = self._timer()
        expiry = now + lifetime
        if refresh_after is None or refresh_after >= lifetime:
            return (value, expiry, expiry)
        return (value, now + refresh_after, expiry)

    def _due(self, key: K, entry: tuple[V | Absent, float, float]) -> bool:
        """Whether an entry read past its refresh time may still be served; if it may,
        its refresh is asked for, and later reads take the hit path until its expiry."""
        value, _, expiry = entry
        if self._timer() >= expiry:
            self._expire(key)
            return False
        if self.on_refresh is None or self.on_refresh(key):
            with self._lock:
                # Unless a writer replaced or dropped it meanwhile.
                if self._entries.get(key) is entry:
                    self._entries[key] = (value, expiry, expiry)
        return True

    def _store_sized(
        self,
        key: K,
        value: V | Absent,
        ttl: float | None,
        size: int,
        refresh_after: float | None = None,
    ) -> None:
        if self._max_bytes is not None and size > self._max_bytes:
            self.discard(key)
            return
        entry = self._entry(value, ttl, refresh_after)
        entries, sizes = self._entries, self._sizes
        with self._lock:
            if entries.pop(key, None) is not None:
                self._bytes -= sizes.pop(key, 0)
            entries[key] = entry
            if size:
                sizes[key] = size
                self._bytes += size
            while entries and (
                len(entries) > self._max_entries
                or (self._max_bytes is not None and self._bytes > self._max_bytes)
            ):
                dropped, _ = entries.popitem(last=False)
                self._bytes -= sizes.pop(dropped, 0)
                self.evictions += 1

    def _expire(self, key: K) -> None:
        with self._lock:
            entry = self._entries.get(key)
            # Only if it is still the expired entry: a writer may have renewed it.
            if entry is not None and entry[2] is not _NO_DEADLINE and self._timer() >= entry[2]:
                del self._entries[key]
                self._bytes -= self._sizes.pop(key, 0)
                self.expirations += 1
