"""Tick arithmetic: the latest due tick of intervals and cron expressions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from kurz.jobs.schedule import EPOCH, Cron, Every

T = datetime(2026, 1, 1, tzinfo=UTC)

moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
intervals = st.one_of(
    st.integers(1, 7 * 86400).map(float),
    st.floats(0.001, 100_000, allow_nan=False, allow_infinity=False),
)
expressions = st.sampled_from(
    [
        "* * * * *",
        "*/5 * * * *",
        "7 * * * *",
        "0 3 * * *",
        "30 2 * * 1-5",
        "0 0 1 * *",
        "15,45 */2 * * *",
        "0 0 29 2 *",
    ]
)


def test_every_ticks_on_multiples_of_the_interval_since_the_epoch() -> None:
    hourly = Every(3600)
    assert hourly.latest(T + timedelta(minutes=59, seconds=59)) == T
    assert hourly.latest(T + timedelta(hours=1)) == T + timedelta(hours=1)
    assert hourly.after(T) == T + timedelta(hours=1)
    # The epoch was a Thursday: weekly ticks fall on Thursdays at midnight UTC.
    assert Every(7 * 86400).latest(T).weekday() == 3


def test_a_fractional_interval_ticks_exactly() -> None:
    tenth = Every(0.1)
    now = T + timedelta(microseconds=250_000)
    assert tenth.latest(now) == T + timedelta(microseconds=200_000)
    assert tenth.after(now) == T + timedelta(microseconds=300_000)


def test_the_latest_tick_after_downtime_is_one_tick_not_all_the_missed_ones() -> None:
    five = Cron("*/5 * * * *")
    assert five.latest(T + timedelta(hours=3, minutes=7)) == T + timedelta(hours=3, minutes=5)


def test_a_cron_tick_at_exactly_now_is_due() -> None:
    assert Cron("0 3 * * *").latest(T + timedelta(hours=3)) == T + timedelta(hours=3)
    assert Cron("0 3 * * *").latest(T + timedelta(hours=3, microseconds=-1)) == T + timedelta(
        days=-1, hours=3
    )


def test_a_sixth_cron_field_is_seconds() -> None:
    every_second = Cron("* * * * * *")
    assert every_second.latest(T + timedelta(seconds=4.5)) == T + timedelta(seconds=4)
    assert every_second.after(T + timedelta(seconds=4.5)) == T + timedelta(seconds=5)


def test_other_time_zones_are_read_as_the_same_instant() -> None:
    # Half an hour off UTC: an hourly tick at local :00 would be wrong by 30 minutes.
    kolkata = T.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert Every(3600).latest(kolkata) == T
    assert Cron("0 * * * *").latest(kolkata) == T
    assert Cron("0 * * * *").latest(kolkata).tzinfo is UTC


@pytest.mark.parametrize("schedule", [Every(60), Cron("* * * * *")])
def test_naive_datetimes_are_refused(schedule: Every | Cron) -> None:
    with pytest.raises(ValueError, match="aware"):
        schedule.latest(datetime(2026, 1, 1))


@pytest.mark.parametrize("seconds", [0, -1, 1e-7])
def test_an_interval_must_be_positive(seconds: float) -> None:
    with pytest.raises(ValueError, match="interval"):
        Every(seconds)


@pytest.mark.parametrize("expression", ["", "61 * * * *", "* * *", "every minute"])
def test_invalid_cron_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ValueError, match="cron"):
        Cron(expression)


@settings(max_examples=500)
@given(seconds=intervals, now=moments)
def test_every_latest_is_the_one_tick_in_the_interval_ending_at_now(
    seconds: float, now: datetime
) -> None:
    schedule = Every(seconds)
    step = timedelta(microseconds=round(seconds * 1_000_000))
    latest = schedule.latest(now)
    assert latest <= now < latest + step
    assert (latest - EPOCH) % step == timedelta(0)
    assert schedule.latest(latest) == latest
    assert schedule.after(now) == latest + step


@settings(max_examples=300)
@given(seconds=intervals, now=moments, later=st.timedeltas(timedelta(0), timedelta(days=30)))
def test_every_latest_never_goes_back(seconds: float, now: datetime, later: timedelta) -> None:
    schedule = Every(seconds)
    assert schedule.latest(now) <= schedule.latest(now + later)


@settings(max_examples=300, deadline=None)
@given(expression=expressions, now=moments)
def test_cron_latest_is_the_last_fire_time_at_or_before_now(expression: str, now: datetime) -> None:
    schedule = Cron(expression)
    latest = schedule.latest(now)
    assert latest <= now
    assert croniter.match(expression, latest)
    # No fire time lies between it and now.
    assert schedule.after(latest) > now
    assert schedule.latest(latest) == latest


# The same expressions as predicates, written out by hand: an oracle that shares no
# code with croniter.
FIRES: dict[str, Callable[[datetime], bool]] = {
    "* * * * *": lambda t: True,
    "*/5 * * * *": lambda t: t.minute % 5 == 0,
    "7 * * * *": lambda t: t.minute == 7,
    "0 3 * * *": lambda t: (t.hour, t.minute) == (3, 0),
    "30 2 * * 1-5": lambda t: (t.hour, t.minute) == (2, 30) and t.weekday() < 5,
    "0 0 1 * *": lambda t: (t.day, t.hour, t.minute) == (1, 0, 0),
    "15,45 */2 * * *": lambda t: t.minute in {15, 45} and t.hour % 2 == 0,
}


@settings(max_examples=300, deadline=None)
@given(expression=st.sampled_from(sorted(FIRES)), now=moments)
def test_cron_latest_agrees_with_a_minute_by_minute_search(expression: str, now: datetime) -> None:
    fires = FIRES[expression]
    minute = now.replace(second=0, microsecond=0)
    while not fires(minute):
        minute -= timedelta(minutes=1)
    assert Cron(expression).latest(now) == minute
