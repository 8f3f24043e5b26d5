"""How often a key was asked for lately: a count-min sketch that forgets by halving.

TinyLFU's frequency estimate (Einziger, Friedman, Manes, "TinyLFU: A Highly Efficient
Cache Admission Policy", 2017), sized and aged as Caffeine's FrequencySketch is: depth
4, counters that stop at 15, and all counters halved once `sample_size` increments
have been counted, so that what was popular an hour ago does not outweigh what is
popular now. ADR 0005 says why and how kurz uses it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable

MAX_COUNT = 15
DEPTH = 4
_HALF = bytes(n >> 1 for n in range(256))


def _primes_from(n: int, count: int) -> tuple[int, ...]:
    """The `count` smallest primes >= n (trial division: n is a cache's size, not 2^60)."""
    found: list[int] = []
    candidate = max(n, 2)
    while len(found) < count:
        if all(candidate % d for d in range(2, math.isqrt(candidate) + 1)):
            found.append(candidate)
        candidate += 1
    return tuple(found)


class CountMinSketch:
    """Estimated recent frequencies of keys, in 4 bytes per unit of width.

    Four rows of one-byte counters. A key's counter in a row is its `hash()` modulo the
    row's width, a distinct prime per row, just above `width`. An increment raises only
    the smallest of the key's four counters ("conservative update", the paper's
    minimal-increment rule), and the estimate is the smallest of the four: collisions
    can only inflate a count, and inflate it less than raising all four would.

    Why moduli and not four hash functions: four Python-level mixes of a 64-bit hash
    cost more than the whole rest of an increment. One `hash()` read modulo four
    primes gives four rows that collide independently (two different hashes meet in
    row r only if they differ by a multiple of its prime; once the primes multiply
    past 2^64, never in all four). A str's `hash()` is SipHash under a key drawn per
    process, which suits a sketch that lives and dies with its process, and which an
    outsider cannot aim collisions at; an int hashes to itself, so consecutive ints
    land in different counters.

    Not locked: increments racing in threads may be lost, which only blurs an estimate.
    """

    __slots__ = ("_additions", "_layout", "_lock", "sample_size", "width", "widths")

    def __init__(self, width: int, sample_size: int) -> None:
        if width < 1 or sample_size < 1:
            raise ValueError("width and sample_size must be positive")
        self.widths = _primes_from(width, DEPTH)
        self.width = self.widths[0]
        self.sample_size = sample_size
        p0, p1, p2, p3 = self.widths
        # The rows and their widths in one tuple: one unpacking, no attribute lookups.
        self._layout: tuple[bytearray, bytearray, bytearray, bytearray, int, int, int, int] = (
            bytearray(p0),
            bytearray(p1),
            bytearray(p2),
            bytearray(p3),
            p0,
            p1,
            p2,
            p3,
        )
        self._additions = 0
        self._lock = threading.Lock()

    @classmethod
    def for_capacity(cls, capacity: int) -> CountMinSketch:
        """A sketch sized as Caffeine sizes it for a cache of `capacity` entries.

        Width 4 x capacity (16 bytes per entry; a key then shares a counter in a row
        with another key about once in 4 x capacity), and a sample of 10 x capacity
        counted accesses between halvings (the paper's W; at W/C = 10, counters that
        stop at 15 lose little).
        """
        capacity = max(capacity, 1)
        return cls(4 * capacity, 10 * capacity)

    def increment(self, key: Hashable) -> None:
        h = hash(key)
        r0, r1, r2, r3, p0, p1, p2, p3 = self._layout
        i0, i1, i2, i3 = h % p0, h % p1, h % p2, h % p3
        c0, c1, c2, c3 = r0[i0], r1[i1], r2[i2], r3[i3]
        # min() written out: the builtin's call costs more than three comparisons.
        low = c0
        if c1 < low:
            low = c1
        if c2 < low:
            low = c2
        if c3 < low:
            low = c3
        if low >= MAX_COUNT:
            return  # saturated: nothing counted, and no halving brought nearer
        low += 1
        if c0 < low:
            r0[i0] = low
        if c1 < low:
            r1[i1] = low
        if c2 < low:
            r2[i2] = low
        if c3 < low:
            r3[i3] = low
        self._additions += 1
        if self._additions >= self.sample_size:
            self._halve()

    def estimate(self, key: Hashable) -> int:
        """How often `key` was counted, at most 15; never less, but for halvings."""
        h = hash(key)
        r0, r1, r2, r3, p0, p1, p2, p3 = self._layout
        low: int = r0[h % p0]
        c: int = r1[h % p1]
        if c < low:
            low = c
        c = r2[h % p2]
        if c < low:
            low = c
        c = r3[h % p3]
        return c if c < low else low

    def _halve(self) -> None:
        # Rare (once per sample) and O(width), so a lock costs nothing on the whole,
        # and it keeps two threads that reach the sample together from halving twice.
        with self._lock:
            if self._additions < self.sample_size:
                return
            for row in self._layout[:4]:
                row[:] = row.translate(_HALF)
            # The sample counts on from half, as the counters do: the next halving
            # comes after sample_size / 2 more increments, and so every one after it.
            self._additions //= 2
