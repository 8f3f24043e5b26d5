"""A link's breakdowns summed over its settled days, kept between requests.

The top values of a busy link over 90 days sum tens of thousands of breakdown rows
(one per link, dimension, day and value: 40,000 for a link with 1,000,000 clicks and
3,000 referrers). Days before today are settled: clicks land on them only late (a
batch recorded just after midnight, a queue drained after an outage). So the stats
keep each link's sums over a range of settled days, with a mark of what the range
held when it was summed: the number of its link_clicks_daily rows and the sum of
their clicks and bot clicks.

The mark tells exactly whether the sums still hold. The click store adds every click
to its day's daily row (clicks or bot clicks) in the same transaction as to its
breakdown rows (an import, through add_counts, adds a link's days with their
breakdowns alike), nothing else writes either, and counts only grow: so a range whose
breakdowns gained a click has a greater mark, and one whose mark is unchanged has the
sums it had. The mark is one read of at most a range's daily rows, in the request's
snapshot; the rows of days not settled yet (today) are summed on every request.
After midnight a range of "the last N days" is another range; its sums are those
kept for the range a day earlier, if they still hold, less the day that left it and
plus the day that joined it (Summed.moved), so that only a process's first view of
a range sums every day of it.

The sums are in this process's memory, least recently used first out, bounded by the
number of values kept; each process keeps its own, and none needs telling about
another's writes (ADR 0020).
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

# (rows, clicks + bot clicks) of a link's daily rollup over a range of days.
Mark = tuple[int, int]
# dimension -> value -> clicks.
Sums = Mapping[str, Mapping[str, int]]
# A link's id and a range of settled days, [start, end).
Key = tuple[int, datetime, datetime]

# Values kept across every link and range: a busy link's 90 days hold about 3,300 of
# them (about 0.4 MB); 250,000 is about 30 MB at most.
MOST_VALUES = 250_000


def _rank(item: tuple[str, int]) -> tuple[int, str]:
    # Most clicks first; ties by the value's code points, as the database ranks them.
    return -item[1], item[0]


@dataclass(frozen=True, slots=True)
class Summed:
    """A link's breakdowns over a range of settled days, with the range's mark."""

    mark: Mark
    sums: Sums
    # Each dimension's values, best first.
    ranked: Mapping[str, list[tuple[str, int]]]

    @classmethod
    def of(cls, mark: Mark, sums: Sums) -> Summed:
        ranked = {name: sorted(values.items(), key=_rank) for name, values in sums.items()}
        return cls(mark, sums, ranked)

    @property
    def size(self) -> int:
        return sum(len(values) for values in self.sums.values())

    def moved(self, mark: Mark, *, left: Sums, joined: Sums) -> Summed:
        """These sums less those of the days that `left` the range, plus those of the
        days that `joined` it: the sums of the range the day after, whose mark is
        `mark`. A value left with no clicks is gone."""
        sums = {dimension: dict(values) for dimension, values in self.sums.items()}
        for dimension, values in left.items():
            kept = sums.setdefault(dimension, {})
            for value, n in values.items():
                if (rest := kept.get(value, 0) - n) > 0:
                    kept[value] = rest
                else:
                    kept.pop(value, None)
        for dimension, values in joined.items():
            kept = sums.setdefault(dimension, {})
            for value, n in values.items():
                kept[value] = kept.get(value, 0) + n
        return Summed.of(mark, {dimension: values for dimension, values in sums.items() if values})

    def top(self, dimension: str, live: Mapping[str, int], top: int) -> list[tuple[str, int]]:
        """The `top` values of `dimension` over the settled days and `live` (the
        same dimension's sums over the days after them), best first.

        Only this range's best `top` and the live values can be among them: any other
        value has no live clicks, and `top` values rank at or above it here and so
        also over both."""
        settled = self.sums.get(dimension, {})
        best = self.ranked.get(dimension, [])[:top]
        candidates = {value for value, _ in best} | live.keys()
        totals = [(value, settled.get(value, 0) + live.get(value, 0)) for value in candidates]
        return heapq.nsmallest(top, totals, key=_rank)


class SettledSums:
    """The Summed of recently asked (link, settled range) pairs, in memory."""

    def __init__(self, most_values: int = MOST_VALUES) -> None:
        self.most_values = most_values
        self._kept: OrderedDict[Key, Summed] = OrderedDict()
        self._values = 0
        self.hits = 0
        self.misses = 0
        # Misses answered from the range a day earlier (Summed.moved).
        self.moves = 0

    def get(self, key: Key, mark: Mark) -> Summed | None:
        """The sums kept for `key`, if its mark is still `mark`."""
        summed = self._kept.get(key)
        if summed is None or summed.mark != mark:
            self.misses += 1
            return None
        self._kept.move_to_end(key)
        self.hits += 1
        return summed

    def peek(self, key: Key) -> Summed | None:
        """The sums kept for `key`, whatever their mark (counted neither way)."""
        return self._kept.get(key)

    def clear(self) -> None:
        """Forget every sum kept (what the first request of a day finds)."""
        self._kept.clear()
        self._values = 0

    def put(self, key: Key, summed: Summed) -> None:
        old = self._kept.pop(key, None)
        if old is not None:
            self._values -= old.size
        size = summed.size
        if size > self.most_values:
            return  # larger than all there is room for: summed each time
        self._kept[key] = summed
        self._values += size
        while self._values > self.most_values:
            _, dropped = self._kept.popitem(last=False)
            self._values -= dropped.size
