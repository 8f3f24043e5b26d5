"""kurz.cache.LRUCache: order, bounds, expiry, negative entries, threads."""

from __future__ import annotations

import random
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kurz.cache import MISSING, NOT_CACHED, LRUCache, Stats, TinyLFUCache
from tests.unit.cache.model import RecencyModel, ops


class Timer:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_least_recently_used_goes_first() -> None:
    cache: LRUCache[str, int] = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert cache.stats().evictions == 1


def test_a_put_renews_recency_and_value() -> None:
    cache: LRUCache[str, int] = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 10)
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b")) == (10, None)


def test_the_byte_bound_evicts_until_the_values_fit() -> None:
    cache: LRUCache[str, str] = LRUCache(100, max_bytes=10, sizeof=len)
    cache.put("a", "xxxx")
    cache.put("b", "yyyy")
    cache.put("c", "zzzz")  # 12 bytes: a goes
    assert ("a" in cache, "b" in cache, "c" in cache) == (False, True, True)
    assert cache.stats().bytes == 8
    cache.put("b", "y")  # replacing a value frees its bytes
    assert cache.stats().bytes == 5
    cache.put("c", "z" * 11)  # larger than the whole cache: not kept, old value gone
    assert "c" not in cache
    assert cache.stats().bytes == 1
    with pytest.raises(ValueError, match="sizeof"):
        LRUCache(1, max_bytes=1)


def test_entries_expire_after_their_ttl() -> None:
    timer = Timer()
    cache: LRUCache[str, int] = LRUCache(10, ttl=5, timer=timer)
    cache.put("a", 1)
    cache.put("b", 2, ttl=20)
    cache.put("c", 3, ttl=float("inf"))
    timer.now += 4.9
    assert cache.get("a") == 1
    timer.now += 0.1
    assert cache.lookup("a") is NOT_CACHED
    timer.now += 100
    assert (cache.get("b"), cache.get("c")) == (None, 3)
    assert cache.stats().expirations == 2
    assert len(cache) == 1


def test_a_negative_entry_answers_missing_until_it_expires() -> None:
    timer = Timer()
    cache: LRUCache[str, int] = LRUCache(10, timer=timer)
    cache.put_missing("nope", ttl=2)
    assert cache.lookup("nope") is MISSING
    assert cache.get("nope") is None
    assert "nope" in cache
    timer.now += 2
    assert cache.lookup("nope") is NOT_CACHED


def test_counters() -> None:
    cache: LRUCache[str, int] = LRUCache(1)
    cache.put("a", 1)
    cache.get("a")
    cache.get("zz")
    cache.put("b", 2)
    cache.discard("b")
    assert cache.stats() == Stats(hits=1, misses=1, evictions=1, expirations=0, entries=0, bytes=0)


def test_a_cache_of_size_zero_keeps_nothing() -> None:
    cache: LRUCache[str, int] = LRUCache(0)
    cache.put("a", 1)
    assert (len(cache), cache.get("a")) == (0, None)


@given(st.integers(1, 5), ops)
def test_it_behaves_as_a_list_kept_in_recency_order(
    size: int, steps: list[tuple[str, int, int]]
) -> None:
    cache: LRUCache[int, int] = LRUCache(size)
    model = RecencyModel(size)
    for op, key, value in steps:
        if op == "get":
            assert cache.get(key) == model.get(key)
        elif op == "put":
            model.put(key, value)
            cache.put(key, value)
        else:
            model.discard(key)
            cache.discard(key)
        assert len(cache) == len(model)
    assert [cache.get(k) for k, _ in list(model.entries)] == [v for _, v in model.entries]


@pytest.mark.parametrize("kind", [LRUCache, TinyLFUCache])
def test_threads_keep_the_bounds_and_the_byte_count_exact(kind: type[LRUCache[int, bytes]]) -> None:
    cache = kind(50, max_bytes=400, sizeof=len)
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(20_000):
                key = rng.randrange(200)
                action = rng.random()
                if action < 0.6:
                    cache.get(key)
                elif action < 0.95:
                    cache.put(key, b"x" * rng.randrange(1, 30))
                else:
                    cache.discard(key)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stats = cache.stats()
    assert stats.entries <= 50
    held = [cache.get(k) for k in range(200)]
    assert stats.bytes == sum(len(v) for v in held if v is not None) <= 400
    if isinstance(cache, TinyLFUCache):
        assert cache.rejections > 0


@pytest.mark.parametrize("kind", [LRUCache, TinyLFUCache])
def test_a_read_past_the_refresh_time_is_served_and_asks_once_for_a_refresh(
    kind: type[LRUCache[str, int]],
) -> None:
    timer = Timer()
    cache = kind(10, timer=timer)
    asked: list[str] = []

    def refresh(key: str) -> bool:
        asked.append(key)
        return True

    cache.on_refresh = refresh
    cache.put("a", 1, ttl=40, refresh_after=30)
    timer.now += 29.9
    assert cache.get("a") == 1
    assert asked == []
    timer.now += 0.1
    # Served as a hit, both ways in; the refresh is asked for once, not per read.
    assert (cache.get("a"), cache.lookup("a"), cache.get("a")) == (1, 1, 1)
    assert asked == ["a"]
    assert cache.stats().hits == 4
    assert "a" in cache


def test_a_refresh_never_serves_an_entry_past_its_lifetime() -> None:
    timer = Timer()
    cache: LRUCache[str, int] = LRUCache(10, timer=timer)
    asked: list[str] = []

    def refresh(key: str) -> bool:
        asked.append(key)
        return True

    cache.on_refresh = refresh
    cache.put("a", 1, ttl=40, refresh_after=30)
    timer.now += 40
    # Nobody read it in its refresh window: it expires as any entry does.
    assert cache.lookup("a") is NOT_CACHED
    assert asked == []
    cache.put("b", 2, ttl=40, refresh_after=30)
    timer.now += 35
    assert cache.get("b") == 2
    assert asked == ["b"]
    timer.now += 5
    # The refresh never landed: the bound holds all the same.
    assert (cache.get("b"), "b" in cache) == (None, False)
    assert cache.stats().expirations == 2


def test_a_put_after_a_refresh_starts_a_new_lifetime() -> None:
    timer = Timer()
    cache: LRUCache[str, int] = LRUCache(10, timer=timer)
    asked: list[str] = []

    def refresh(key: str) -> bool:
        asked.append(key)
        return True

    cache.on_refresh = refresh
    cache.put("a", 1, ttl=40, refresh_after=30)
    timer.now += 31
    assert cache.get("a") == 1
    cache.put("a", 2, ttl=40, refresh_after=30)
    timer.now += 29
    assert cache.get("a") == 2
    timer.now += 1
    assert cache.get("a") == 2
    assert asked == ["a", "a"]


def test_without_a_refresh_hook_the_refresh_time_changes_nothing() -> None:
    timer = Timer()
    cache: LRUCache[str, int] = LRUCache(10, timer=timer)
    cache.put("a", 1, ttl=40, refresh_after=30)
    timer.now += 39
    assert cache.get("a") == 1
    timer.now += 1
    assert cache.get("a") is None
