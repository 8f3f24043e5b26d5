"""kurz.cache.TinyLFUCache: who gets in, and that it is otherwise the LRU cache."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from hypothesis import given
from hypothesis import strategies as st

from kurz.cache import MISSING, CountMinSketch, LRUCache, TinyLFUCache
from tests.unit.cache.model import RecencyModel, ops

V = TypeVar("V")


class Timer:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Always(random.Random):
    """An rng whose every draw is `value`: the 1-in-128 admission made certain, or never."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def small(
    size: int, *, ttl: float | None = None, timer: Callable[[], float] = time.monotonic
) -> TinyLFUCache[str, int]:
    """A cache whose sketch halves nothing in these tests, and no lucky draws."""
    sketch = CountMinSketch(1024, sample_size=1000)
    return TinyLFUCache(size, ttl=ttl, timer=timer, sketch=sketch, rng=Always(1.0))


def ask(cache: LRUCache[str, V], key: str, times: int) -> None:
    for _ in range(times):
        cache.get(key)


def read_through(cache: LRUCache[int, int], key: int) -> bool:
    """As the redirect path uses its cache: a miss is loaded and put. True on a hit."""
    if cache.get(key) is None:
        cache.put(key, key)
        return False
    return True


def test_a_one_hit_wonder_cannot_evict_a_frequent_key() -> None:
    cache = small(2)
    cache.put("a", 1)
    cache.put("b", 2)
    ask(cache, "a", 3)
    ask(cache, "b", 3)
    assert cache.get("x") is None  # the miss a read-through cache answers with a put
    cache.put("x", 9)
    assert ("x" in cache, cache.get("a"), cache.get("b")) == (False, 1, 2)
    assert cache.rejections == 1
    assert cache.stats().evictions == 0


def test_a_newcomer_asked_for_more_often_than_the_victim_gets_in() -> None:
    cache = small(2)
    cache.put("a", 1)
    cache.put("b", 2)
    ask(cache, "b", 1)
    ask(cache, "a", 3)  # b, asked for once, is the least recently used: the victim
    ask(cache, "x", 1)
    cache.put("x", 9)
    assert "x" not in cache  # a tie keeps the victim: the newcomer must be more frequent
    ask(cache, "x", 1)
    cache.put("x", 9)
    assert (cache.get("x"), cache.get("a"), "b" in cache) == (9, 1, False)
    assert cache.stats().evictions == 1


def test_updates_and_puts_into_room_are_never_judged() -> None:
    cache = small(2)
    cache.put("a", 1)
    cache.put("b", 2)  # room: in, though never asked for
    ask(cache, "b", 5)
    cache.put("a", 10)  # full, and a is cold, but an update must land
    assert (cache.get("a"), cache.rejections) == (10, 0)


def test_a_warm_newcomer_that_loses_still_gets_in_one_time_in_128() -> None:
    for rng, admitted in ((Always(0.0), True), (Always(1 / 128), False)):
        cache = TinyLFUCache[str, int](1, sketch=CountMinSketch(1024, 1000), rng=rng)
        cache.put("hot", 1)
        ask(cache, "hot", 10)
        ask(cache, "warm", 6)
        cache.put("warm", 2)
        assert ("warm" in cache) is admitted
    cache = TinyLFUCache[str, int](1, sketch=CountMinSketch(1024, 1000), rng=Always(0.0))
    cache.put("hot", 1)
    ask(cache, "hot", 10)
    ask(cache, "cool", 5)  # below the threshold: the lucky draw does not apply
    cache.put("cool", 2)
    assert "cool" not in cache


def test_reads_are_counted_and_puts_are_not() -> None:
    cache = small(2)
    cache.put("a", 1)  # half full: counting starts
    cache.get("a")  # a hit
    cache.get("b")  # a miss
    cache.lookup("a")
    cache.lookup("c")
    assert "a" in cache  # a peek, not an access
    cache.put("d", 4)
    assert [cache.sketch.estimate(k) for k in "abcd"] == [2, 1, 1, 0]


def test_nothing_is_counted_until_the_cache_is_half_full() -> None:
    cache = small(4)
    cache.put("a", 1)
    ask(cache, "a", 3)
    assert cache.sketch.estimate("a") == 0
    cache.put("b", 2)
    ask(cache, "a", 3)
    assert cache.sketch.estimate("a") == 3
    sized = TinyLFUCache[str, str](100, max_bytes=10, sizeof=len)
    sized.put("a", "x" * 5)  # half the bytes, if not half the entries
    ask(sized, "a", 1)
    assert sized.sketch.estimate("a") == 1


def test_an_expired_victim_goes_without_a_contest() -> None:
    timer = Timer()
    cache = small(1, ttl=5, timer=timer)
    cache.put("a", 1)
    ask(cache, "a", 5)
    timer.now += 5
    cache.put("x", 9)  # never asked for, but a is dead weight
    assert (cache.get("x"), cache.rejections) == (9, 0)


def test_a_large_newcomer_must_beat_every_entry_it_would_push_out() -> None:
    sketch = CountMinSketch(1024, 1000)
    cache = TinyLFUCache[str, str](100, max_bytes=10, sizeof=len, sketch=sketch, rng=Always(1.0))
    cache.put("a", "xxxx")
    cache.put("b", "yyyy")
    ask(cache, "a", 1)
    ask(cache, "b", 3)
    ask(cache, "c", 2)
    cache.put("c", "z" * 8)  # needs a's and b's bytes, and loses to b
    assert ("a" in cache, "b" in cache, "c" in cache) == (True, True, False)
    cache.put("d", "zzz")  # needs a's bytes only, and loses to a
    assert "d" not in cache
    ask(cache, "d", 2)
    cache.put("d", "zzz")
    assert ("a" in cache, "b" in cache, "d" in cache) == (False, True, True)
    assert cache.stats().bytes == 7
    cache.put("e", "e" * 11)  # larger than the whole cache: dropped without a contest
    assert (cache.stats().bytes, cache.rejections) == (7, 2)


def test_negative_entries_are_admitted_as_values_are() -> None:
    cache = small(2)
    cache.put("a", 1)
    cache.put("b", 2)
    ask(cache, "a", 2)
    ask(cache, "b", 2)
    ask(cache, "nope", 1)
    cache.put_missing("nope", ttl=60)  # one unknown code: not worth a popular link
    assert "nope" not in cache
    ask(cache, "nope", 2)
    cache.put_missing("nope", ttl=60)  # asked for again and again: worth it
    assert cache.lookup("nope") is MISSING
    cache.put_missing("b", ttl=60)  # b was deleted: replacing it is an update, always done
    assert cache.lookup("b") is MISSING


def test_a_crawler_does_not_flush_the_popular_keys() -> None:
    """50 popular keys, each asked for once in every 150 requests, between which a
    crawler asks for 100 keys it never asks for again: LRU evicts each popular key
    just before it is wanted again, TinyLFU keeps them."""
    popular = range(50)
    tiny = TinyLFUCache[int, int](100, rng=random.Random(1))
    lru = LRUCache[int, int](100)
    hits = [0, 0]
    for i, cache in enumerate((tiny, lru)):
        for _ in range(3):
            for key in popular:
                read_through(cache, key)
        for n in range(4000):
            read_through(cache, 10_000 + 2 * n)
            read_through(cache, 10_001 + 2 * n)
            hit = read_through(cache, popular[n % 50])
            if n >= 2000:  # once the sketch has seen the popular keys come round
                hits[i] += hit
    assert hits[0] == 2000
    assert hits[1] < 100


@given(st.integers(1, 5), ops)
def test_it_is_the_lru_model_but_for_the_new_keys_it_turns_away(
    size: int, steps: list[tuple[str, int, int]]
) -> None:
    # A small sample, so that halvings happen too.
    sketch = CountMinSketch(256, sample_size=40)
    cache: TinyLFUCache[int, int] = TinyLFUCache(size, sketch=sketch, rng=random.Random(0))
    model = RecencyModel(size)
    for op, key, value in steps:
        if op == "get":
            assert cache.get(key) == model.get(key)
        elif op == "put":
            judged = key not in model and len(model) == size
            wanted = sketch.estimate(key)
            held = sketch.estimate(model.oldest()) if judged else 0
            cache.put(key, value)
            if judged and key not in cache:
                assert wanted <= held
                continue
            if judged:
                assert wanted > held or wanted >= 6
            model.put(key, value)
        else:
            model.discard(key)
            cache.discard(key)
        assert len(cache) == len(model)
    assert [cache.get(k) for k, _ in list(model.entries)] == [v for _, v in model.entries]
