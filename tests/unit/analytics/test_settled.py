"""The settled sums: their merge with the live days ranks as summing everything would,
and what is kept is told apart by its mark and bounded by its values."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from kurz.analytics.settled import SettledSums, Summed

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 3, 1, tzinfo=UTC)

# Few values and few counts: ties, values only settled, only live, or both.
values = st.dictionaries(st.sampled_from(["a", "B", "b", "(direct)", "é", "z"]), st.integers(1, 4))


@given(settled=values, live=values, top=st.integers(1, 7))
def test_the_top_of_settled_and_live_days_is_the_top_of_their_sum(
    settled: dict[str, int], live: dict[str, int], top: int
) -> None:
    summed = Summed.of((1, sum(settled.values())), {"referrer": settled})
    every = Counter(settled) + Counter(live)
    # Most clicks first, ties by code point: as the database ranks them.
    expected = sorted(every.items(), key=lambda item: (-item[1], item[0]))[:top]
    assert summed.top("referrer", live, top) == expected


def test_a_dimension_without_settled_values_ranks_the_live_ones() -> None:
    summed = Summed.of((0, 0), {})
    assert summed.top("country", {"DE": 2, "AT": 2, "CH": 5}, 2) == [("CH", 5), ("AT", 2)]
    assert summed.top("country", {}, 10) == []


def summed(mark: tuple[int, int], n: int) -> Summed:
    return Summed.of(mark, {"referrer": {f"r{i}": 1 for i in range(n)}})


def test_sums_are_kept_until_their_mark_changes() -> None:
    kept = SettledSums()
    kept.put((1, START, END), summed((30, 500), 3))
    assert kept.get((1, START, END), (30, 501)) is None
    assert kept.get((2, START, END), (30, 500)) is None
    found = kept.get((1, START, END), (30, 500))
    assert found is not None
    assert found.top("referrer", {}, 1) == [("r0", 1)]
    assert (kept.hits, kept.misses) == (1, 2)


def test_the_least_recently_used_go_first_when_the_values_are_too_many() -> None:
    kept = SettledSums(most_values=10)
    for link in (1, 2, 3):
        kept.put((link, START, END), summed((1, 1), 4))
    # 12 values: the first put went.
    assert kept.get((1, START, END), (1, 1)) is None
    assert kept.get((2, START, END), (1, 1)) is not None
    kept.put((4, START, END), summed((1, 1), 4))
    # Link 2 was used since link 3 was put: link 3 went.
    assert kept.get((3, START, END), (1, 1)) is None
    assert kept.get((2, START, END), (1, 1)) is not None
    assert kept.get((4, START, END), (1, 1)) is not None


def test_sums_put_again_replace_the_old_and_too_many_are_not_kept() -> None:
    kept = SettledSums(most_values=10)
    kept.put((1, START, END), summed((1, 1), 6))
    kept.put((1, START, END), summed((2, 2), 6))
    kept.put((2, START, END), summed((1, 1), 4))
    assert kept.get((1, START, END), (2, 2)) is not None
    assert kept.get((2, START, END), (1, 1)) is not None
    kept.put((3, START, END), summed((1, 1), 11))
    assert kept.get((3, START, END), (1, 1)) is None
    # What was kept stays.
    assert kept.get((1, START, END), (2, 2)) is not None


days_of_values = st.lists(
    st.dictionaries(st.sampled_from(["a", "b", "é", "(direct)"]), st.integers(1, 3)),
    min_size=2,
    max_size=6,
)


def summed_over(days: list[dict[str, int]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for day in days:
        total.update(day)
    return total


@given(days=days_of_values, top=st.integers(1, 5))
def test_a_range_moved_a_day_sums_and_ranks_as_summing_it_anew(
    days: list[dict[str, int]], top: int
) -> None:
    earlier = Summed.of((1, 1), {"referrer": dict(summed_over(days[:-1]))})
    moved = earlier.moved((2, 2), left={"referrer": days[0]}, joined={"referrer": days[-1]})
    anew = Summed.of(
        (2, 2), {"referrer": dict(summed_over(days[1:]))} if summed_over(days[1:]) else {}
    )
    # A value left with no clicks is gone, not kept at 0.
    assert moved.sums == anew.sums
    assert moved.mark == (2, 2)
    assert moved.top("referrer", {}, top) == anew.top("referrer", {}, top)
    # The sums moved from are left as they were.
    assert earlier.sums == {"referrer": dict(summed_over(days[:-1]))}
