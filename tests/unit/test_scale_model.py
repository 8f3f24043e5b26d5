"""bench.scale_model: the cache model behind docs/capacity.md, checked against exact sums,
an exact renewal solution and real LRUCaches."""

from __future__ import annotations

import math

import pytest
from bench.scale_model import (
    INF,
    Caches,
    Zipf,
    characteristic_time,
    l2_entries_for,
    node_loss_excess,
    presence,
    simulate,
    solve,
    solve_l1,
)


@pytest.mark.parametrize("skew", [0.8, 1.2])
def test_head_and_tail_sums_match_the_exact_sums(skew: float) -> None:
    links = 1_000_000
    zipf = Zipf.over(links, skew)
    assert len(zipf.ranks) < 10_000  # the point: far fewer terms than links
    exact = [i**-skew for i in range(1, links + 1)]
    norm = math.fsum(exact)
    assert zipf.total([x**-skew for x in zipf.ranks]) == pytest.approx(norm, rel=1e-6)
    assert zipf.total([1.0] * len(zipf.ranks)) == pytest.approx(links, rel=1e-6)
    # A hit ratio (Che, no TTL) at a characteristic time of 10^5 requests.
    t = 1e5
    want = math.fsum(w / norm * -math.expm1(-w / norm * t) for w in exact)
    got = zipf.total([p * -math.expm1(-p * t) for p in zipf.probs])
    assert got == pytest.approx(want, rel=1e-6)


def _exact_presence(rate: float, t_c: float, ttl: float, steps: int = 2_000) -> float:
    """h from E[min(sigma, ttl)] by the renewal equation's delay form: q(t) = P(sigma > t)
    is 1 before t_c, 1 - e^-a at t_c, then q'(t) = -rate e^-a q(t - t_c)."""
    step = t_c / steps
    slope = rate * math.exp(-rate * t_c)
    q = [1.0] * steps + [-math.expm1(-rate * t_c)]
    total = t_c  # the integral of q over [0, t_c)
    for k in range(steps + 1, round(ttl / step) + 1):
        q.append(q[-1] - slope * step * (q[k - 1 - steps] + q[k - steps]) / 2)
        total += step * (q[-2] + q[-1]) / 2
    x = rate * total
    return x / (1 + x)


@pytest.mark.parametrize("a", [0.3, 1.0, 2.0, 5.0])
@pytest.mark.parametrize("b", [1.5, 2.0, 5.0, 10.0])
def test_presence_is_close_to_the_exact_renewal_solution(a: float, b: float) -> None:
    t_c = 1.0
    assert presence(a, t_c, b * t_c) == pytest.approx(_exact_presence(a, t_c, b), abs=0.006)


def test_presence_limits() -> None:
    # No TTL: Che's 1 - e^-a. A TTL within t_c: a pure TTL cache, rate*ttl / (1 + rate*ttl).
    assert presence(2.0, 1.5, INF) == pytest.approx(1 - math.exp(-3.0))
    assert presence(2.0, 10.0, 4.0) == pytest.approx(8 / 9)
    assert presence(0.0, 10.0, 4.0) == 0.0
    # More time in the cache, or a longer TTL, never lowers it.
    for ttl in (2.0, 5.0, 50.0, INF):
        hits = [presence(0.7, t, ttl) for t in (0.5, 1.0, 3.0, 10.0, 100.0)]
        assert hits == sorted(hits)
    hits = [presence(0.7, 3.0, ttl) for ttl in (1.0, 3.0, 6.0, 30.0, INF)]
    assert hits == sorted(hits)


def test_che_agrees_with_a_simulated_lru_cache() -> None:
    zipf = Zipf.over(10_000, 0.9)
    caches = Caches(processes=1, l1_entries=500, l1_ttl=INF, l2_entries=0, l2_ttl=INF)
    model = solve(zipf, 1_000.0, caches).tiers
    sim = simulate(10_000, 0.9, 1_000.0, caches, requests=150_000, warmup=30_000)
    assert 0.3 < model.l1 < 0.7  # neither trivially small nor trivially large
    assert sim.l1 == pytest.approx(model.l1, abs=0.01)


def test_two_tiers_with_ttls_agree_with_simulated_lru_caches() -> None:
    # TTLs a few times the characteristic times, so that expiry and eviction both count.
    zipf = Zipf.over(20_000, 1.0)
    caches = Caches(
        processes=4,
        l1_entries=300,
        l1_ttl=2.0,
        l2_entries=3_000,
        l2_ttl=20.0,
        l2_lazy_expiry=True,  # as the simulated L2, an LRUCache, expires
    )
    solved = solve(zipf, 2_000.0, caches)
    sim = simulate(20_000, 1.0, 2_000.0, caches, requests=200_000, warmup=60_000)
    assert solved.l1_time < caches.l1_ttl < 5 * solved.l1_time
    assert solved.l2_time < caches.l2_ttl < 10 * solved.l2_time
    assert sim.l1 == pytest.approx(solved.tiers.l1, abs=0.015)
    assert sim.l2 == pytest.approx(solved.tiers.l2, abs=0.015)


def test_hit_ratios_grow_with_cache_size_and_fall_with_processes() -> None:
    zipf = Zipf.over(10**9, 1.0)
    sized = [
        solve(zipf, 40_000.0, Caches(8, l1, INF, l2, 86_400.0)).tiers
        for l1, l2 in [(10**4, 10**6), (10**5, 10**7), (10**6, 10**8), (10**7, 10**9)]
    ]
    assert sized[0].l1 < sized[1].l1 < sized[2].l1 < sized[3].l1
    assert sized[0].sql > sized[1].sql > sized[2].sql > sized[3].sql
    # The same L1 size in more processes: each sees fewer requests per link.
    by_processes = [solve_l1(zipf, 40_000.0, p, 10**5, 30.0).hit for p in (2, 8, 32)]
    assert by_processes[0] > by_processes[1] > by_processes[2]
    assert by_processes[0] - by_processes[-1] > 0.05


def test_a_ttl_caps_what_a_bigger_l1_can_give() -> None:
    # Once an L1 keeps entries longer than its TTL, more entries only hold expired ones.
    zipf = Zipf.over(10**9, 1.0)
    capped = [solve_l1(zipf, 40_000.0, 8, n, 30.0) for n in (10**6, 10**7)]
    assert all(c.time > 30.0 for c in capped)
    assert capped[0].hit == pytest.approx(capped[1].hit, rel=1e-9)
    assert solve_l1(zipf, 40_000.0, 8, 10**6, INF).hit > capped[0].hit + 0.1


def test_every_link_fits() -> None:
    zipf = Zipf.over(5_000, 1.0)
    rates = [100.0 * p for p in zipf.probs]
    assert characteristic_time(zipf, rates, 5_000, INF, lazy_expiry=True) == INF
    assert solve(zipf, 100.0, Caches(1, 5_000, INF, 0, INF)).tiers.l1 == pytest.approx(1.0)


def test_l2_entries_for_is_the_least_size_under_the_budget() -> None:
    zipf = Zipf.over(10**8, 1.0)
    l1 = solve_l1(zipf, 40_000.0, 8, 10**5, 30.0)
    entries = l2_entries_for(zipf, 40_000.0, l1, INF, 1_000.0)
    assert entries is not None

    def sql(n: int) -> float:
        return 40_000.0 * solve(zipf, 40_000.0, Caches(8, 10**5, 30.0, n, INF)).tiers.sql

    assert sql(entries) <= 1_000.0 < sql(int(entries * 0.97))
    # Reloading every cached link each hour costs more than the budget on its own.
    assert l2_entries_for(zipf, 40_000.0, l1, 3_600.0, 1_000.0) is None


def test_node_loss_costs_its_share_of_l2_hits_then_decays() -> None:
    zipf = Zipf.over(10**7, 1.0)
    solved = solve(zipf, 40_000.0, Caches(8, 10**5, 30.0, 10**6, INF))
    hits = solved.l2_hits_per_second(zipf)
    assert node_loss_excess(zipf, solved, 0.25, 0.0) == pytest.approx(hits / 4)
    later = [node_loss_excess(zipf, solved, 0.25, t) for t in (1.0, 60.0, 3_600.0)]
    assert later == sorted(later, reverse=True)
    assert later[-1] < hits / 4 / 10
