"""The redirect path's bounded, expiring map."""

from __future__ import annotations

from kurz.links.cache import BoundedTTLMap


class Timer:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_holds_at_most_max_entries_dropping_the_oldest() -> None:
    cache: BoundedTTLMap[int] = BoundedTTLMap(3, 60)
    for i in range(5):
        cache.put(str(i), i)
    assert len(cache) == 3
    assert [cache.get(str(i)) for i in range(5)] == [None, None, 2, 3, 4]


def test_entries_live_between_three_quarters_of_the_ttl_and_all_of_it() -> None:
    timer = Timer()
    cache: BoundedTTLMap[str] = BoundedTTLMap(10, 40, timer=timer)
    cache.put("a", "x")
    timer.now = 29.9
    assert cache.get("a") == "x"
    timer.now = 40.0
    assert cache.get("a") is None
    assert len(cache) == 0


def test_a_burst_of_entries_expires_spread_out() -> None:
    timer = Timer()
    cache: BoundedTTLMap[int] = BoundedTTLMap(1000, 40, timer=timer)
    for i in range(1000):
        cache.put(str(i), i)
    timer.now = 35.0  # 7/8 of the TTL: about half should be gone
    alive = sum(cache.get(str(i)) is not None for i in range(1000))
    assert 300 < alive < 700


def test_put_again_refreshes_and_discard_forgets() -> None:
    timer = Timer()
    cache: BoundedTTLMap[str] = BoundedTTLMap(2, 10, timer=timer)
    cache.put("a", "1")
    cache.put("b", "2")
    cache.put("a", "3")  # now the newest
    cache.put("c", "4")  # evicts b, the oldest
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == ("3", None, "4")
    cache.discard("a")
    cache.discard("missing")
    assert cache.get("a") is None


def test_size_zero_caches_nothing() -> None:
    cache: BoundedTTLMap[str] = BoundedTTLMap(0, 10)
    cache.put("a", "1")
    assert cache.get("a") is None
