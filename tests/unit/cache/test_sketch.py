"""kurz.cache.CountMinSketch: never under-counts, halves on time, errs within the bound."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kurz.cache import CountMinSketch
from kurz.cache.sketch import MAX_COUNT


@given(st.lists(st.integers(0, 300) | st.text(max_size=3), max_size=400))
def test_an_estimate_is_never_below_the_true_count_before_a_halving(keys: list[object]) -> None:
    # Narrow rows: many collisions, which may only ever raise an estimate.
    sketch = CountMinSketch(50, sample_size=10_000)
    for key in keys:
        sketch.increment(key)
    for key, count in Counter(keys).items():
        assert sketch.estimate(key) >= min(count, MAX_COUNT)


def test_counters_stop_at_15_and_a_saturated_increment_is_not_counted() -> None:
    sketch = CountMinSketch(1024, sample_size=20)
    for _ in range(30):  # 15 counted, then 15 saturated: no halving at 20
        sketch.increment("hot")
    assert sketch.estimate("hot") == MAX_COUNT


def test_every_counter_is_halved_after_sample_size_increments() -> None:
    sketch = CountMinSketch(1 << 16, sample_size=1000)
    for _ in range(11):
        sketch.increment("hot")
    for key in range(988):
        sketch.increment(key)
    assert sketch.estimate("hot") == 11  # 999 increments: not yet
    sketch.increment(988)
    assert sketch.estimate("hot") == 5  # 11 // 2
    assert sketch.estimate(0) == 0  # 1 // 2
    # The sample counts on from half: the next halving is 500 increments away.
    for key in range(1000, 1499):
        sketch.increment(key)
    assert sketch.estimate("hot") == 5
    sketch.increment(1499)
    assert sketch.estimate("hot") == 2


def test_each_row_is_a_distinct_prime_wide() -> None:
    assert CountMinSketch(1, 1).widths == (2, 3, 5, 7)
    assert CountMinSketch(1000, 1).widths == (1009, 1013, 1019, 1021)
    sketch = CountMinSketch.for_capacity(10_000)  # 4 x 10,000, and 10 x 10,000
    assert (sketch.width, sketch.sample_size) == (40_009, 100_000)
    with pytest.raises(ValueError, match="positive"):
        CountMinSketch(0, 1)


@pytest.mark.parametrize("width", [8192, 16_384])
def test_the_error_stays_within_the_count_min_bound(width: int) -> None:
    """Count-min's guarantee: over-counts by more than e/width x N only with odds e^-depth.

    N is the number of increments. Here 10,000 keys are counted 1 to 4 times each
    (never up to 15, so the cap plays no part), and 10,000 keys never seen are asked
    too. The keys are random 62-bit ints, whose hashes are spread as a str's are, and
    fixed by the seed. Conservative update does better than the bound, so the mean
    error is held to a tighter line as well.
    """
    rng = random.Random(5)
    sketch = CountMinSketch(width, sample_size=10**9)
    truth = {rng.getrandbits(62): rng.randint(1, 4) for _ in range(10_000)}
    stream = [key for key, count in truth.items() for _ in range(count)]
    rng.shuffle(stream)
    for key in stream:
        sketch.increment(key)
    asked = [*truth, *(rng.getrandbits(62) for _ in range(10_000))]
    errors = [sketch.estimate(key) - truth.get(key, 0) for key in asked]
    bound = math.e / width * len(stream)
    assert min(errors) >= 0
    assert sum(error > bound for error in errors) / len(errors) <= math.exp(-4)
    assert sum(errors) / len(errors) <= len(stream) / width / 4


def test_str_keys_spread_as_well_as_int_keys() -> None:
    # str hashes are randomised per process, so this one holds for any hash seed.
    sketch = CountMinSketch(16_384, sample_size=10**9)
    for n in range(20_000):
        sketch.increment(f"c{n:07d}")
    errors = [sketch.estimate(f"c{n:07d}") - 1 for n in range(20_000)]
    assert sum(errors) / len(errors) < 0.1
    assert max(errors) <= 3
