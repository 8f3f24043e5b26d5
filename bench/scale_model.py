"""Hit ratios of kurz's two cache tiers under Zipf traffic, without storing the links.

The model behind bench.scale and docs/capacity.md. Requests follow the independent
reference model (IRM): each redirect asks for link i with probability p_i ∝ i^-s,
independently of every other request. A cache is described by Che's approximation:
an LRU cache of C entries keeps an entry for a characteristic time T after the
entry's last request, where T solves sum_i occupancy_i(T) = C (Che et al. 2002;
why it is accurate: Fricker, Robert and Roberts 2012, arXiv:1202.3974).

Entries also carry a TTL counted from when they were stored, which a hit does not
renew (kurz.cache.LRUCache and Redis' SET EX both work so). A hot link is then
reloaded once per TTL, which matters: see `presence`.

Two tiers: P processes each hold an L1 and see a random 1/P of the requests; the
L2 sees the L1s' misses, modelled (as Martina, Garetto and Leonardi 2014,
arXiv:1307.6702, do for cache networks) as Poisson with per-link rate
lambda_i (1 - h1_i). `simulate` checks all of this against real LRUCaches.

At 10^9 links nothing is enumerated: the first HEAD ranks are summed exactly and the
rest, smooth in log(rank), by Simpson's rule over log(rank).
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from kurz.cache import LRUCache

HEAD = 1_000
TAIL_INTERVALS = 2_048  # Simpson intervals over log(rank), an even number
INF = math.inf


@dataclass(frozen=True, slots=True)
class Zipf:
    """Links ranked by popularity; `probs[j]` is the probability of one link at `ranks[j]`,
    which stands for `weights[j]` links (1 in the head, many in the tail)."""

    links: int
    skew: float
    ranks: tuple[float, ...]
    weights: tuple[float, ...]
    probs: tuple[float, ...]

    @classmethod
    def over(cls, links: int, skew: float) -> Zipf:
        head = min(links, HEAD)
        ranks = [float(i) for i in range(1, head + 1)]
        weights = [1.0] * head
        if links > head:
            # sum_{i=head+1}^{links} f(i) = integral of f from head+1/2 to links+1/2,
            # to within (f'(links+1/2) - f'(head+1/2))/24: below 1e-9 of the total here.
            lo, hi = math.log(head + 0.5), math.log(links + 0.5)
            step = (hi - lo) / TAIL_INTERVALS
            for k in range(TAIL_INTERVALS + 1):
                coefficient = 1 if k in (0, TAIL_INTERVALS) else (4 if k % 2 else 2)
                x = math.exp(lo + k * step)
                ranks.append(x)
                weights.append(coefficient * step / 3 * x)
        raw = [x**-skew for x in ranks]
        total = math.fsum(w * r for w, r in zip(weights, raw, strict=True))
        probs = tuple(r / total for r in raw)
        return cls(links, skew, tuple(ranks), tuple(weights), probs)

    def total(self, values: Sequence[float]) -> float:
        """Sum over all links of a per-link quantity given at each point."""
        return math.fsum(w * v for w, v in zip(self.weights, values, strict=True))


def presence(rate: float, t_c: float, ttl: float) -> float:
    """The probability that a request for a link finds it cached (also, by PASTA, the
    share of time it is cached), for requests at `rate` per second, an LRU
    characteristic time `t_c` and a TTL `ttl` that hits do not renew.

    Each miss stores the link; it stays until min(sigma, ttl), where sigma is the first
    moment t_c passes without a request. With g = E[min(sigma, ttl)] the link is hit
    rate*g times per miss, so h = rate*g / (1 + rate*g). E[sigma] = (e^a - 1)/rate for
    a = rate*t_c (which gives Che's h = 1 - e^-a with no TTL); E[min(sigma, ttl)] is
    taken with sigma - t_c modelled as 0 with probability e^-a (no request within t_c)
    and else exponential. Against the exact renewal solution this is within 0.006
    (largest where ttl is about twice t_c and a is near 1).
    """
    if rate <= 0.0 or t_c <= 0.0:
        return 0.0
    a = rate * t_c
    if ttl == INF:
        return -math.expm1(-a)
    if ttl <= t_c or a > 600.0:
        g = ttl  # the link is never idle for t_c before its TTL runs out
    else:
        # E[sigma] - t_c = t_c (e^a - 1 - a)/a, by series where that cancels.
        excess = t_c * (a / 2 + a * a / 6 + a**3 / 24 if a < 1e-4 else math.expm1(a) / a - 1)
        busy = -math.expm1(-a)  # P(a request within t_c)
        g = t_c + excess * -math.expm1(-(ttl - t_c) * busy / excess)
    x = rate * g
    return x / (1.0 + x)


def characteristic_time(
    zipf: Zipf, rates: Sequence[float], entries: float, ttl: float, *, lazy_expiry: bool
) -> float:
    """T solving sum_i occupancy_i(T) = entries; INF when every link fits.

    With lazy expiry (kurz.cache.LRUCache) an expired entry keeps its slot until it is
    asked for or evicted, so occupancy is plain LRU's 1 - e^(-rate T); with active
    expiry (Redis reclaims expired keys) it is `presence`.
    """
    if entries <= 0:
        return 0.0
    offered = zipf.total(rates)
    if offered <= 0:
        return INF

    def occupancy(t: float) -> float:
        if lazy_expiry or ttl == INF:
            return zipf.total([-math.expm1(-r * t) for r in rates])
        return zipf.total([presence(r, t, ttl) for r in rates])

    # Rounding may put the sum a hair above the number of links, which every cache of
    # that many entries holds.
    if occupancy(INF if ttl != INF and not lazy_expiry else 1e300) <= entries * (1 + 1e-9):
        return INF
    # sum_i (1 - e^(-r_i t)) <= t sum_i r_i, so t = entries / sum_i r_i is a lower bound.
    lo = entries / offered
    hi = lo * 2
    while occupancy(hi) < entries:
        lo, hi = hi, hi * 2
    while hi / lo > 1 + 1e-10:
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if occupancy(mid) < entries else (lo, mid)
    return math.sqrt(lo * hi)


@dataclass(frozen=True, slots=True)
class Tiers:
    """Where redirects are answered: `l1` is the share of requests the L1s answer, `l2`
    the share of L1 misses that L2 answers."""

    l1: float
    l2: float

    @property
    def sql(self) -> float:
        """The share of all redirects that reads SQL."""
        return (1 - self.l1) * (1 - self.l2)


@dataclass(frozen=True, slots=True)
class Caches:
    """The deployment: P processes with an L1 each, one L2 (all Redis nodes together)."""

    processes: int
    l1_entries: int
    l1_ttl: float
    l2_entries: int
    l2_ttl: float
    # Redis frees expired keys (active expiry); an LRUCache keeps them until touched.
    l2_lazy_expiry: bool = False


@dataclass(frozen=True, slots=True)
class L1:
    """The L1s solved: their hit ratio, characteristic time, and per point the rate at
    which one link's requests reach L2 (lambda_i (1 - h1_i), summed over processes)."""

    hit: float
    time: float
    misses: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Solved:
    tiers: Tiers
    l1_time: float
    l2_time: float
    # Per point: the L2's request rate for one link, and its L2 hit probability.
    l2_rates: tuple[float, ...]
    l2_hits: tuple[float, ...]

    def l2_hits_per_second(self, zipf: Zipf) -> float:
        return zipf.total([m * h for m, h in zip(self.l2_rates, self.l2_hits, strict=True)])


def solve_l1(zipf: Zipf, rate: float, processes: int, entries: int, ttl: float) -> L1:
    """P L1s at `rate` redirects per second in all, each seeing a random 1/P of them."""
    rates = [rate * p / processes for p in zipf.probs]
    t1 = characteristic_time(zipf, rates, entries, ttl, lazy_expiry=True)
    h1 = [presence(r, t1, ttl) for r in rates]
    hit = zipf.total([p * h for p, h in zip(zipf.probs, h1, strict=True)])
    misses = tuple(r * processes * (1 - h) for r, h in zip(rates, h1, strict=True))
    return L1(hit, t1, misses)


def solve_l2(zipf: Zipf, l1: L1, entries: int, ttl: float, *, lazy_expiry: bool) -> Solved:
    """The L2 behind solved L1s, its requests taken as Poisson per link."""
    t2 = characteristic_time(zipf, l1.misses, entries, ttl, lazy_expiry=lazy_expiry)
    h2 = tuple(presence(m, t2, ttl) for m in l1.misses)
    offered = zipf.total(l1.misses)
    served = zipf.total([m * h for m, h in zip(l1.misses, h2, strict=True)])
    tiers = Tiers(l1.hit, served / offered if offered > 0 else 0.0)
    return Solved(tiers, l1.time, t2, l1.misses, h2)


def solve(zipf: Zipf, rate: float, caches: Caches) -> Solved:
    """Both tiers at `rate` redirects per second."""
    l1 = solve_l1(zipf, rate, caches.processes, caches.l1_entries, caches.l1_ttl)
    return solve_l2(zipf, l1, caches.l2_entries, caches.l2_ttl, lazy_expiry=caches.l2_lazy_expiry)


def l2_entries_for(
    zipf: Zipf, rate: float, l1: L1, ttl: float, sql_per_second: float
) -> int | None:
    """The fewest L2 entries (Redis, active expiry) that keep SQL reads under
    `sql_per_second`, to within 1%; None if even every link cached is not enough."""

    def sql(entries: float) -> float:
        solved = solve_l2(zipf, l1, round(entries), ttl, lazy_expiry=False)
        return rate * solved.tiers.sql

    lo, hi = 1.0, float(zipf.links)
    if sql(hi) > sql_per_second:
        return None
    while hi / lo > 1.01:
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if sql(mid) > sql_per_second else (lo, mid)
    return math.ceil(hi)


def node_loss_excess(zipf: Zipf, solved: Solved, share: float, after: float) -> float:
    """Extra SQL reads per second `after` seconds since `share` of L2's keys were lost.

    A lost link that was cached costs one SQL read, at its next L2 request; its
    requests come at rate m, so that read falls at time t with density m e^(-m t).
    """
    return share * zipf.total(
        [h * m * math.exp(-m * after) for m, h in zip(solved.l2_rates, solved.l2_hits, strict=True)]
    )


class _Clock:
    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def cumulative_weights(links: int, skew: float) -> array[float]:
    """Of ranks 1..links: bisect a uniform draw times the last into it for a 0-based rank.

    An array, not a list: bisecting a million floats laid out in one block is 30% faster.
    """
    return array("d", itertools.accumulate(i**-skew for i in range(1, links + 1)))


def simulate(
    links: int,
    skew: float,
    rate: float,
    caches: Caches,
    *,
    requests: int,
    warmup: int,
    seed: int = 1,
) -> Tiers:
    """The same deployment with real LRUCaches (the L2 one LRUCache too), on a simulated
    clock: requests 1/rate seconds apart, each to a process drawn at random."""
    rng = random.Random(seed)
    cumulative = cumulative_weights(links, skew)
    scale, draw, find = cumulative[-1], rng.random, bisect.bisect_left
    clock = _Clock()
    l1_ttl = None if caches.l1_ttl == INF else caches.l1_ttl
    l2_ttl = None if caches.l2_ttl == INF else caches.l2_ttl
    l1s: list[LRUCache[int, bool]] = [
        LRUCache(caches.l1_entries, ttl=l1_ttl, timer=clock) for _ in range(caches.processes)
    ]
    l2: LRUCache[int, bool] | None = (
        LRUCache(caches.l2_entries, ttl=l2_ttl, timer=clock) if caches.l2_entries else None
    )
    step, processes = 1.0 / rate, caches.processes
    l1_misses = sql = 0
    for n in range(warmup + requests):
        if n == warmup:
            l1_misses = sql = 0
        key = find(cumulative, draw() * scale)
        l1 = l1s[int(draw() * processes)]
        clock.now += step
        if l1.get(key) is None:
            l1_misses += 1
            if l2 is None or l2.get(key) is None:
                sql += 1
                if l2 is not None:
                    l2.put(key, True)
            l1.put(key, True)
    return Tiers(1 - l1_misses / requests, 1 - sql / l1_misses if l1_misses else 0.0)
