"""A consistent-hash ring that places keys exactly as uhashring's ketama mode does.

A node of weight w among n nodes of total weight W gets (points/4 * n * w) // W md5
digests of "<node>-<i>", and each digest gives four points, its 32-bit little-endian
words. A key goes to the first point strictly above the first word of md5(key),
wrapping around. libketama differs only where a key hashes exactly onto a point (it
takes that point) and in rounding weights through floats. Why a ketama ring and not
jump hash, rendezvous or maglev: docs/decisions/0006-hash-ring.md.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import struct
import threading
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from fractions import Fraction
from itertools import repeat
from typing import NamedTuple, Protocol


class _Digest(Protocol):
    def digest(self) -> bytes: ...


def _builtin_md5() -> Callable[[bytes], _Digest]:
    # CPython's own md5 hashes a short key faster than OpenSSL's, whose per-object
    # setup dominates for a few bytes of input (ADR 0006); some builds leave it out.
    try:
        md5: Callable[[bytes], _Digest] = importlib.import_module("_md5").md5
    except (ImportError, AttributeError):
        md5 = hashlib.md5
    return md5


# md5 here is a layout function shared with other ketama clients, not a security measure.
_md5 = _builtin_md5()
_first_word = struct.Struct("<I").unpack_from
_four_words = struct.Struct("<4I").unpack
POINTS_PER_DIGEST = 4
# The lookup table has about this many buckets per point, so that few hold one.
_BUCKETS_PER_POINT = 16
_MIN_BITS, _MAX_BITS = 8, 20


class HashRing:
    """Maps keys to nodes so that a node joining or leaving moves few keys.

    Lookups take no lock: every change builds a new lookup state, published by one
    attribute assignment, so a lookup racing a change sees the ring before or after it.
    Changes take a lock, so that racing ones are applied one after the other.
    """

    __slots__ = ("_lookup", "_points", "_weights", "_writing")

    def __init__(self, nodes: Mapping[str, int] | Iterable[str] = (), *, points: int = 160) -> None:
        if points < POINTS_PER_DIGEST or points % POINTS_PER_DIGEST:
            # A ketama digest yields four points: other counts have no ketama layout.
            raise ValueError(f"points must be a positive multiple of 4, not {points}")
        if isinstance(nodes, str):
            raise TypeError("nodes is a collection of node names, not one name")
        self._points = points
        self._writing = threading.Lock()
        self._weights: dict[str, int] = {}
        pairs = nodes.items() if isinstance(nodes, Mapping) else ((n, 1) for n in nodes)
        for node, weight in pairs:
            self._weights[node] = _checked(weight)
        self._build()

    def add(self, node: str, weight: int = 1) -> None:
        """Add a node, or change the weight of one already there."""
        with self._writing:
            self._weights[node] = _checked(weight)
            self._build()

    def remove(self, node: str) -> None:
        """Remove a node; KeyError if it is not on the ring."""
        with self._writing:
            del self._weights[node]
            self._build()

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(self._weights)

    @property
    def points(self) -> tuple[tuple[int, str], ...]:
        """The ring's points, ascending, each with the node that owns it."""
        lookup = self._lookup
        return tuple(zip(lookup.points, lookup.owners, strict=False))

    def weight(self, node: str) -> int:
        return self._weights[node]

    def __len__(self) -> int:
        return len(self._weights)

    def __contains__(self, node: object) -> bool:
        return node in self._weights

    def __repr__(self) -> str:
        return f"HashRing({self._weights!r}, points={self._points})"

    def node_for(self, key: str | bytes) -> str:
        """The node that holds `key`; LookupError on an empty ring."""
        if isinstance(key, str):
            key = key.encode()
        position: int = _first_word(_md5(key).digest())[0]
        table, shift, points, owners, _ = self._lookup
        node = table[position >> shift]
        if node is None:
            # The key's bucket holds a point (or the ring is empty): search the points.
            if not points:
                raise LookupError("the ring has no nodes")
            node = owners[bisect_right(points, position)]
        return node

    def nodes_for(self, key: str | bytes) -> Iterator[str]:
        """Every node once, in ring order from the key's own: where to go when one is out.

        Yields nothing on an empty ring, and skips a node whose weight is too small
        to earn it a point.
        """
        return _walk(self._lookup, _position(key))

    def node_for_bounded(self, key: str | bytes, loads: Mapping[str, int], factor: float) -> str:
        """The first node from the key's own, in ring order, with room for one more key.

        Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam,
        arXiv:1608.01350): no node holds more than ceil(c * m / n) of m keys, m counting
        the key being placed, as HAProxy's hash-balance-factor does (lb_chash.c,
        chash_server_is_eligible: "(served + 1) * factor"). Like HAProxy's, capacity
        follows weight: a node of weight w has room while its load is below
        ceil(c * (L + 1) * w / W), L the sum of `loads` (keys or requests in flight per
        node now; a node left out has none) over the nodes on the ring.
        """
        if factor < 1:
            raise ValueError(f"the balance factor must be at least 1, not {factor}")
        lookup = self._lookup
        if not lookup.points:
            raise LookupError("the ring has no nodes")
        num, den = _as_ratio(factor)
        on_ring, get = lookup.on_ring, loads.get
        room = (sum(map(get, on_ring, repeat(0))) + 1) * num
        scale = den * sum(on_ring.values())
        position = _position(key)
        # Most keys find room on their own node: look there before walking the ring.
        node = lookup.table[position >> lookup.shift]
        if node is None:
            node = lookup.owners[bisect_right(lookup.points, position)]
        # load < ceil(x) is load < x for an integer load: no rounding needed.
        if get(node, 0) * scale < room * on_ring[node]:
            return node
        for node in _walk(lookup, position):
            if get(node, 0) * scale < room * on_ring[node]:
                return node
        raise AssertionError("unreachable: the capacities sum to c * (m + 1) > m")

    def _build(self) -> None:
        count, weight_sum = len(self._weights), sum(self._weights.values())
        per_node = self._points // POINTS_PER_DIGEST
        owner_of: dict[int, str] = {}
        # In insertion order: where two nodes hash to one point, the later one
        # keeps it, as in uhashring (a dict keyed by point).
        for node, weight in self._weights.items():
            for i in range(per_node * count * weight // weight_sum if count else 0):
                for point in _four_words(_md5(f"{node}-{i}".encode()).digest()):
                    owner_of[point] = node
        points = sorted(owner_of)
        owners = [owner_of[p] for p in points]
        # A node whose weight is too small to earn a point is on no key's path.
        holders = set(owners)
        on_ring = {n: w for n, w in self._weights.items() if n in holders}
        if owners:
            owners.append(owners[0])  # a key past the last point wraps to the first
        table, shift = _bucket_table(points, owners)
        self._lookup = _Lookup(table, shift, points, owners, on_ring)


class _Lookup(NamedTuple):
    """One ring's lookup state, replaced whole when a node comes or goes."""

    table: list[str | None]  # owner per bucket of the hash space (see _bucket_table)
    shift: int  # a position's bucket is position >> shift
    points: list[int]  # ascending
    owners: list[str]  # the owner of each point, then the first point's again
    on_ring: dict[str, int]  # the nodes that own a point, with their weights


def _position(key: str | bytes) -> int:
    if isinstance(key, str):
        key = key.encode()
    position: int = _first_word(_md5(key).digest())[0]
    return position


def _walk(lookup: _Lookup, position: int) -> Iterator[str]:
    points, owners = lookup.points, lookup.owners
    count, distinct = len(points), len(lookup.on_ring)
    start = bisect_right(points, position)
    seen: set[str] = set()
    for i in range(start, start + count):
        node = owners[i % count]
        if node not in seen:
            seen.add(node)
            yield node
            if len(seen) == distinct:
                return


def _bucket_table(points: list[int], owners: list[str]) -> tuple[list[str | None], int]:
    """The owner for each bucket of the hash space that holds no point, else None.

    Most lookups then take one list index instead of a binary search, the slower half
    of a lookup after md5 itself.
    """
    if not points:
        return [None], 32
    bits = (len(points) * _BUCKETS_PER_POINT - 1).bit_length()
    bits = min(max(bits, _MIN_BITS), _MAX_BITS)
    shift = 32 - bits
    table: list[str | None] = [None] * (1 << bits)
    before = -1  # the bucket of the previous point
    for i, point in enumerate(points):
        bucket = point >> shift
        # A key in a bucket strictly between two points' buckets goes to the later point.
        if bucket > before + 1:
            table[before + 1 : bucket] = [owners[i]] * (bucket - before - 1)
        before = bucket
    table[before + 1 :] = [owners[len(points)]] * (len(table) - before - 1)
    return table, shift


def _checked(weight: int) -> int:
    if weight < 1:
        raise ValueError(f"a node's weight is at least 1, not {weight!r}")
    return weight


@functools.lru_cache(maxsize=32)
def _as_ratio(factor: float) -> tuple[int, int]:
    # Factors are written as decimals (1.1, 1.25); the float 1.1 is a hair above
    # 11/10, which would let a node hold one key more than the bound at round loads.
    return Fraction(factor).limit_denominator(10_000).as_integer_ratio()
