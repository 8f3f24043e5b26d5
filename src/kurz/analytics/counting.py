"""A batch of clicks counted into rollup keys: per hour, per day, per breakdown, visitors.

Counted in Python before anything is written, so that each rollup row is one upsert
however many clicks it holds.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress

from kurz.analytics.events import ClickEvent, DeviceClass
from kurz.analytics.pacing import slices

HOUR = 3_600
DAY = 86_400

# A visitor of an hour or of a day: (HOUR or DAY, start of the period, link, visitor).
VisitorKey = tuple[int, float, int, str]


@dataclass(slots=True)
class Counted:
    """A batch counted: a row per rollup key it touches."""

    # (link, period start) -> [clicks, bot clicks, uniques], uniques added later.
    hourly: dict[tuple[int, float], list[int]]
    daily: dict[tuple[int, float], list[int]]
    breakdowns: Counter[tuple[int, str, float, str]]
    visitors: set[VisitorKey]


# What a ClickEvent is counted by, besides its hour: (link, referrer, browser, os,
# device, bot, country, city, variant); and the visitor of a click that is not a bot's,
# (link, visitor).
_KIND = operator.itemgetter(0, 2, 3, 4, 5, 6, 7, 9, 10)
_VISIT = operator.itemgetter(0, 8)
_AT = operator.itemgetter(1)
_BOT = operator.itemgetter(6)
Kind = tuple[int, str | None, str, str, DeviceClass, bool, str | None, str | None, str | None]
# The longest value a breakdown row holds (link_breakdowns_daily.value).
_VALUE = 255


async def count(events: Sequence[ClickEvent]) -> Counted:
    """Count a batch, in one pass over its events; everything after it works on keys.

    A slice whose clicks all fall in one hour (nearly every one: a batch spans a
    second or so) is counted by C code alone (Counter.update over itemgetters), with
    no Python loop per event; a slice across an hour's end takes that loop.
    """
    kinds: dict[float, Counter[Kind]] = {}
    people: dict[float, set[tuple[int, str]]] = {}
    async for chunk in slices(events):
        first, last = min(map(_AT, chunk)), max(map(_AT, chunk))
        hour = first - first % HOUR
        if last < hour + HOUR:
            counted = kinds.get(hour)
            if counted is None:
                counted = kinds[hour] = Counter()
                people[hour] = set()
            counted.update(map(_KIND, chunk))
            people[hour].update(map(_VISIT, compress(chunk, map(operator.not_, map(_BOT, chunk)))))
            continue
        for event in chunk:
            at = event[1]
            hour = at - at % HOUR
            counted = kinds.get(hour)
            if counted is None:
                counted = kinds[hour] = Counter()
                people[hour] = set()
            counted[_KIND(event)] += 1
            if not event[6]:
                people[hour].add(_VISIT(event))

    hourly: dict[tuple[int, float], list[int]] = {}
    daily: dict[tuple[int, float], list[int]] = {}
    breakdowns: Counter[tuple[int, str, float, str]] = Counter()
    for hour, counted in kinds.items():
        day = hour - hour % DAY
        async for items in slices(list(counted.items())):
            for (
                (link, referrer, browser, os_family, device, bot, country, city, variant),
                n,
            ) in items:
                column = 1 if bot else 0
                hourly.setdefault((link, hour), [0, 0, 0])[column] += n
                daily.setdefault((link, day), [0, 0, 0])[column] += n
                if bot:
                    breakdowns[link, "bot", day, browser] += n
                else:
                    breakdowns[link, "referrer", day, (referrer or "(direct)")[:_VALUE]] += n
                    breakdowns[link, "browser", day, browser] += n
                    breakdowns[link, "os", day, os_family] += n
                    breakdowns[link, "device", day, device] += n
                    breakdowns[link, "country", day, country or "(unknown)"] += n
                    if city is not None:
                        # Only where it is known: without city data (the shipped
                        # data has none) an "(unknown)" row per link and day would
                        # hold nothing the totals do not.
                        breakdowns[link, "city", day, city_value(city, country)] += n
                    if variant is not None:
                        # Only a link with variants has rows of this dimension.
                        breakdowns[link, "variant", day, variant[:_VALUE]] += n

    visitors: set[VisitorKey] = set()
    for hour, seen in people.items():
        day = hour - hour % DAY
        async for pairs in slices(list(seen)):
            for link, visitor in pairs:
                visitors.add((HOUR, hour, link, visitor))
                visitors.add((DAY, day, link, visitor))
    return Counted(hourly, daily, breakdowns, visitors)


def city_value(city: str, country: str | None) -> str:
    """A city as the breakdown names it: "Paris, FR", not "Paris" (there is one in Texas)."""
    return (city if country is None else f"{city}, {country}")[:_VALUE]
