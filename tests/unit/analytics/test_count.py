"""kurz.analytics.counting.count: a batch's rollup rows, whatever hours its clicks span."""

from __future__ import annotations

import asyncio
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from kurz.analytics import click_event
from kurz.analytics.counting import DAY, HOUR, VisitorKey, count
from kurz.analytics.events import ClickEvent
from kurz.analytics.pacing import SLICE

START = 1_717_200_000.0  # 2024-06-01T00:00:00Z


Rows = dict[tuple[int, float], list[int]]
Breakdowns = Counter[tuple[int, str, float, str]]


def reference(events: list[ClickEvent]) -> tuple[Rows, Rows, Breakdowns, set[VisitorKey]]:
    """The counts, one click at a time, as plainly as they can be written."""
    hourly: Rows = {}
    daily: Rows = {}
    breakdowns: Breakdowns = Counter()
    visitors: set[VisitorKey] = set()
    for (
        link,
        at,
        referrer,
        browser,
        os_family,
        device,
        bot,
        country,
        visitor,
        city,
        variant,
    ) in events:
        hour = at - at % HOUR
        day = hour - hour % DAY
        column = 1 if bot else 0
        hourly.setdefault((link, hour), [0, 0, 0])[column] += 1
        daily.setdefault((link, day), [0, 0, 0])[column] += 1
        if bot:
            breakdowns[link, "bot", day, browser] += 1
            continue
        breakdowns[link, "referrer", day, referrer or "(direct)"] += 1
        breakdowns[link, "browser", day, browser] += 1
        breakdowns[link, "os", day, os_family] += 1
        breakdowns[link, "device", day, device] += 1
        breakdowns[link, "country", day, country or "(unknown)"] += 1
        if city is not None:
            breakdowns[link, "city", day, city if country is None else f"{city}, {country}"] += 1
        if variant is not None:
            breakdowns[link, "variant", day, variant] += 1
        visitors.add((HOUR, hour, link, visitor))
        visitors.add((DAY, day, link, visitor))
    return hourly, daily, breakdowns, visitors


clicks = st.builds(
    lambda link, offset, referrer, bot, visitor, place, variant: click_event(
        link_id=link,
        at=START + offset,
        referrer_host=referrer,
        browser="Chrome",
        os="Linux",
        device="bot" if bot else "desktop",
        bot=bot,
        visitor=visitor,
        country=place[0],
        city=place[1],
        variant=variant,
    ),
    st.integers(1, 3),
    # Mostly one hour, some clicks in the next hours and days, some just before.
    st.one_of(
        st.floats(0, HOUR - 0.001),
        st.floats(-2.0, 2 * DAY),
        st.sampled_from([HOUR - 0.000001, HOUR, DAY - 0.5, DAY]),
    ),
    st.sampled_from([None, "news.example"]),
    st.booleans(),
    st.sampled_from(["a1", "b2"]),
    # Where: the shipped data knows no city; a city database, most.
    st.sampled_from(
        [(None, None), ("FR", None), ("FR", "Paris"), ("US", "Paris"), (None, "Paris")]
    ),
    st.sampled_from([None, "https://a.example/", "https://b.example/"]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(clicks, max_size=3 * SLICE), st.booleans())
def test_a_batch_is_counted_as_clicks_counted_one_by_one(
    events: list[ClickEvent], in_order: bool
) -> None:
    if in_order:
        # As a queue gives them: in time order, so that most slices lie in one hour.
        events = sorted(events, key=lambda event: event[1])
    counted = asyncio.run(count(events))
    hourly, daily, breakdowns, visitors = reference(events)
    assert counted.hourly == hourly
    assert counted.daily == daily
    assert counted.breakdowns == breakdowns
    assert counted.visitors == visitors


def test_a_slice_across_the_end_of_an_hour_is_counted_in_both_hours() -> None:
    def click(at: float) -> ClickEvent:
        return click_event(
            link_id=1, at=at, browser="Chrome", os="Linux", device="desktop", bot=False, visitor="v"
        )

    events = [click(START + HOUR - 1), click(START + HOUR - 0.000001), click(START + HOUR)]
    counted = asyncio.run(count(events))
    assert counted.hourly == {(1, START): [2, 0, 0], (1, START + HOUR): [1, 0, 0]}
    assert counted.daily == {(1, START): [3, 0, 0]}
