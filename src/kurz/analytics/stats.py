"""Click statistics read from the rollups: a link's series and top values, a key's totals.

Every figure comes from link_clicks_hourly, link_clicks_daily and link_breakdowns_daily,
each read by a range of its primary key; raw click events are never read here.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from pydantic import TypeAdapter
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.analytics.models import (
    DIMENSIONS,
    ClickCounts,
    ClickTotals,
    Interval,
    LinkClicks,
    LinkStats,
    SeriesPoint,
    StatsSummary,
    TopValue,
    TopValues,
)
from kurz.analytics.settled import Mark, SettledSums, Summed
from kurz.auth.models import Principal

# Without custom plans, a generic one guesses a handful of breakdown rows for a link
# that has tens of thousands: an index scan and a sort instead of a bitmap scan and a
# hash aggregate, and for the totals a sort spilling to disk (docs/benchmarks/history.md,
# "Stats queries on a link with 10M clicks": the rows "free to reuse a generic plan").
from kurz.db import custom_plans as custom_plans
from kurz.db.tables import link_breakdowns_daily, link_clicks_daily, link_clicks_hourly, links
from kurz.errors import Problem, invalid
from kurz.links.queries import visible

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STEPS: dict[Interval, timedelta] = {"hour": HOUR, "day": DAY}
# 31 days of hours; 3 years of days (one of them a leap year).
MAX_POINTS: dict[Interval, int] = {"hour": 744, "day": 1_096}
_MOST: dict[Interval, str] = {"hour": "744 (31 days)", "day": "1096 (3 years)"}
DEFAULT_SPANS: dict[Interval, timedelta] = {"hour": timedelta(hours=24), "day": timedelta(days=30)}
TOP_LINKS = 10
_SERIES = TypeAdapter(list[SeriesPoint])


def _floor(at: datetime, step: timedelta) -> datetime:
    return at - (at - _EPOCH) % step


def _ceil(at: datetime, step: timedelta) -> datetime:
    floored = _floor(at, step)
    return floored if floored == at else floored + step


def _query_problem(field: str, message: str) -> Problem:
    return invalid(field, message, location="query")


@dataclass(frozen=True, slots=True)
class Window:
    """A range of whole hours or whole UTC days, [start, end), as the rollups hold them."""

    start: datetime
    end: datetime
    interval: Interval

    @property
    def step(self) -> timedelta:
        return STEPS[self.interval]

    def points(self) -> list[datetime]:
        step, count = self.step, (self.end - self.start) // self.step
        return [self.start + i * step for i in range(count)]

    def days(self) -> Window:
        """The whole UTC days this window touches: what the daily breakdowns can tell."""
        return Window(_floor(self.start, DAY), _ceil(self.end, DAY), "day")


def _aware(field: str, value: datetime) -> datetime:
    if value.utcoffset() is None:
        raise _query_problem(field, "needs a UTC offset (RFC 3339), e.g. 2026-01-01T00:00:00Z")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise _query_problem(field, "is out of range") from None


def window(
    *, start: datetime | None, end: datetime | None, interval: Interval, now: datetime
) -> Window:
    """The range a request asks for, widened to whole intervals; a 422 if it is unusable."""
    end_at = now if end is None else _aware("to", end)
    start_at = None if start is None else _aware("from", start)
    step = STEPS[interval]
    try:
        if start_at is None:
            start_at = end_at - DEFAULT_SPANS[interval]
        widened = Window(_floor(start_at, step), _ceil(end_at, step), interval)
        widened.days()  # The breakdowns' whole days must be representable too.
    except OverflowError:
        raise _query_problem("to", "is out of range") from None
    if start_at >= end_at:
        raise _query_problem("from", "must be before `to` (which defaults to now)")
    points = (widened.end - widened.start) // step
    if points > MAX_POINTS[interval]:
        raise _query_problem(
            "from", f"the range holds {points} {interval}s once widened; at most {_MOST[interval]}"
        )
    return widened


def _sum(column: ColumnElement[Any]) -> ColumnElement[Any]:
    # PostgreSQL sums BIGINTs into NUMERIC: cast back, so that the driver gives ints.
    return sa.cast(sa.func.coalesce(sa.func.sum(column), 0), sa.BigInteger)


def _sum_over_all(column: ColumnElement[Any]) -> ColumnElement[Any]:
    return sa.cast(sa.func.sum(column).over(), sa.BigInteger)


def bytewise(conn: AsyncConnection, column: ColumnElement[str]) -> ColumnElement[str]:
    # Ties sort by code point on both backends (SQLite's default already does).
    return sa.collate(column, "C") if conn.dialect.name == "postgresql" else column


async def _series(conn: AsyncConnection, link_id: int, span: Window) -> list[SeriesPoint]:
    table = link_clicks_hourly if span.interval == "hour" else link_clicks_daily
    period = table.c.hour if span.interval == "hour" else table.c.day
    rows = await conn.execute(
        sa.select(period, table.c.clicks, table.c.uniques, table.c.bot_clicks).where(
            table.c.link_id == link_id, period >= span.start, period < span.end
        )
    )
    found = {at: counts for at, *counts in rows.all()}
    none = (0, 0, 0)
    # Up to 1,096 points: validated in one call (pydantic-core's loop), which costs a
    # fifth of constructing each model unvalidated in Python.
    return _SERIES.validate_python(
        [
            {"at": at, "clicks": counts[0], "uniques": counts[1], "bot_clicks": counts[2]}
            for at in span.points()
            for counts in (found.get(at, none),)
        ]
    )


async def top_values(
    *,
    conn: AsyncConnection,
    link_id: int,
    days: Window,
    top: int,
    settled: SettledSums | None = None,
    today: datetime | None = None,
) -> TopValues:
    """The most clicked values of each dimension over `days`.

    With `settled` and `today` (the start of today, UTC), the days before today are
    summed once and kept there while they stay unchanged (kurz.analytics.settled);
    today's rows are summed each time. Otherwise the database ranks them all.
    """
    cut = None if settled is None or today is None else min(days.end, today)
    if settled is None or cut is None or cut <= days.start:
        return top_values_of(days, await _ranked(conn=conn, link_id=link_id, days=days, top=top))
    before = Window(days.start, cut, "day")
    mark = await _mark(conn, link_id, before)
    key = (link_id, before.start, before.end)
    summed = settled.get(key, mark)
    if summed is None:
        summed = await _slid(conn, link_id, settled, before, mark) or Summed.of(
            mark, await _sums(conn, link_id, before)
        )
        settled.put(key, summed)
    live = await _sums(conn, link_id, Window(cut, days.end, "day")) if cut < days.end else {}
    return top_values_of(
        days,
        {
            dimension: [
                TopValue.model_construct(value=value, clicks=n)
                for value, n in summed.top(dimension, live.get(dimension, {}), top)
            ]
            for dimension in DIMENSIONS
        },
    )


async def _mark(conn: AsyncConnection, link_id: int, days: Window) -> Mark:
    """What `days` of the link's daily rollup hold: its rows, and their clicks and bot
    clicks summed (kurz.analytics.settled)."""
    d = link_clicks_daily
    counted = (
        await conn.execute(
            sa.select(sa.func.count(), _sum(d.c.clicks + d.c.bot_clicks)).where(
                d.c.link_id == link_id, d.c.day >= days.start, d.c.day < days.end
            )
        )
    ).one()
    return counted[0], counted[1]


async def _slid(
    conn: AsyncConnection, link_id: int, settled: SettledSums, days: Window, mark: Mark
) -> Summed | None:
    """The sums of `days` from those kept for the same range a day earlier, if they
    still hold: less the day that left the range, plus the day that joined it. What a
    range of "the last N days" needs after midnight; None without such sums."""
    earlier = Window(days.start - DAY, days.end - DAY, "day")
    kept = settled.peek((link_id, earlier.start, earlier.end))
    if kept is None or kept.mark != await _mark(conn, link_id, earlier):
        return None
    left = await _sums(conn, link_id, Window(earlier.start, days.start, "day"))
    joined = await _sums(conn, link_id, Window(earlier.end, days.end, "day"))
    settled.moves += 1
    return kept.moved(mark, left=left, joined=joined)


async def _sums(conn: AsyncConnection, link_id: int, days: Window) -> dict[str, dict[str, int]]:
    """Every value's clicks over `days`, by dimension (_summing)."""
    params = {"link_id": link_id, "start": days.start, "end": days.end}
    rows = (await conn.execute(_summing(conn.dialect.name), params)).all()
    if conn.dialect.name == "sqlite":
        # A JSON object of value: clicks; {} for no row.
        return {dimension: orjson.loads(sums) for dimension, sums in rows if sums != "{}"}
    # Two arrays, in the same order; NULL for no row.
    return {
        dimension: dict(zip(values, clicks, strict=True))
        for dimension, values, clicks in rows
        if values
    }


@functools.cache
def _summing(dialect: str) -> sa.CompoundSelect[Any]:
    """One statement: per dimension, one range of the primary key, grouped, and handed
    over in one row: on SQLite a JSON object of value: clicks, on PostgreSQL an array
    of values and one of clicks (which asyncpg decodes in C). Made once per backend,
    since building and looking up eight subqueries cost a millisecond a time.

    A row per value cost as much again as the summing, in Python, for the 3,300
    values of a busy link's 90 days. (One GROUP BY dimension, value over the link's
    rows cost SQLite half as much again as one per dimension: a larger sort.)"""
    b = link_breakdowns_daily
    parts = []
    for dimension in DIMENSIONS:
        grouped = (
            sa.select(b.c.value, _sum(b.c.clicks).label("clicks"))
            .where(
                b.c.link_id == sa.bindparam("link_id"),
                b.c.dimension == dimension,
                b.c.day >= sa.bindparam("start", type_=b.c.day.type),
                b.c.day < sa.bindparam("end", type_=b.c.day.type),
            )
            .group_by(b.c.value)
            .subquery()
        )
        handed: list[Any] = (
            [sa.func.json_group_object(grouped.c.value, grouped.c.clicks)]
            if dialect == "sqlite"
            else [sa.func.array_agg(grouped.c.value), sa.func.array_agg(grouped.c.clicks)]
        )
        parts.append(
            sa.select(sa.literal(dimension).label("dimension"), *handed).select_from(grouped)
        )
    return sa.union_all(*parts)


async def _ranked(
    *, conn: AsyncConnection, link_id: int, days: Window, top: int
) -> dict[str, list[TopValue]]:
    """Each dimension's `top` values, in one statement: per dimension, one range of the
    primary key, grouped, ranked and cut to `top` by the database.

    bench/stats_query.py measured the alternatives: one GROUP BY dimension, value over
    the link's range, ranked here (slower on both backends: a larger sort, and every
    value comes back), and the six statements sent one after another (slower on
    PostgreSQL by the round trips; on SQLite the same, within the noise).
    """
    b = link_breakdowns_daily
    clicks = _sum(b.c.clicks).label("clicks")
    ranked = [
        sa.select(sa.literal(dimension).label("dimension"), b.c.value, clicks)
        .where(
            b.c.link_id == link_id,
            b.c.dimension == dimension,
            b.c.day >= days.start,
            b.c.day < days.end,
        )
        .group_by(b.c.value)
        .order_by(clicks.desc(), bytewise(conn, b.c.value))
        .limit(top)
        .subquery()
        for dimension in DIMENSIONS
    ]
    rows = await conn.execute(sa.union_all(*(sa.select(part) for part in ranked)))
    best: dict[str, list[TopValue]] = {dimension: [] for dimension in DIMENSIONS}
    # A UNION ALL promises no order: ranked again here, as the database did (code points).
    for dimension, value, n in sorted(rows, key=lambda row: (-row[2], row[1])):
        best[dimension].append(TopValue.model_construct(value=value, clicks=n))
    return best


def top_values_of(days: Window, best: Mapping[str, list[TopValue]]) -> TopValues:
    """The answer's `top`, from each dimension's values, ranked."""
    return TopValues(
        start=days.start,
        end=days.end,
        referrer=best["referrer"],
        browser=best["browser"],
        os=best["os"],
        device=best["device"],
        country=best["country"],
        city=best["city"],
        bot=best["bot"],
        variant=best["variant"],
    )


async def get_link_stats(
    *,
    conn: AsyncConnection,
    link_id: int,
    code: str,
    span: Window,
    top: int,
    settled: SettledSums | None = None,
    today: datetime | None = None,
) -> LinkStats:
    """A link's totals, series and top values (for `settled` and `today`: top_values)."""
    await custom_plans(conn)
    series = await _series(conn, link_id, span)
    totals = ClickCounts(
        clicks=sum(point.clicks for point in series),
        uniques=sum(point.uniques for point in series),
        bot_clicks=sum(point.bot_clicks for point in series),
    )
    return LinkStats(
        code=code,
        interval=span.interval,
        start=span.start,
        end=span.end,
        totals=totals,
        series=series,
        top=await top_values(
            conn=conn, link_id=link_id, days=span.days(), top=top, settled=settled, today=today
        ),
    )


async def get_summary(*, conn: AsyncConnection, principal: Principal, span: Window) -> StatsSummary:
    """Totals over the links a key may see, from the daily rollup (span is in days).

    One pass: the links' sums, then the totals over them (window functions) on the
    rows of the top links; no rows at all when no link had a click in the range.
    """
    await custom_plans(conn)
    d = link_clicks_daily
    per_link = (
        sa.select(
            links.c.code,
            _sum(d.c.clicks).label("clicks"),
            _sum(d.c.uniques).label("uniques"),
            _sum(d.c.bot_clicks).label("bot_clicks"),
        )
        .select_from(d.join(links, links.c.id == d.c.link_id))
        .where(d.c.day >= span.start, d.c.day < span.end, *visible(principal))
        # By the key alone (PostgreSQL knows code depends on it): SQLite then sums each
        # link's rows as the join yields them, with no sort.
        .group_by(links.c.id)
        .cte("per_link")
    )
    rows = (
        await conn.execute(
            sa.select(
                per_link.c.code,
                per_link.c.clicks,
                _sum_over_all(per_link.c.clicks),
                _sum_over_all(per_link.c.uniques),
                _sum_over_all(per_link.c.bot_clicks),
                sa.func.count(sa.case((per_link.c.clicks > 0, 1))).over(),
            )
            .order_by(per_link.c.clicks.desc(), bytewise(conn, per_link.c.code))
            .limit(TOP_LINKS)
        )
    ).all()
    totals = rows[0][2:] if rows else (0, 0, 0, 0)
    return StatsSummary(
        start=span.start,
        end=span.end,
        totals=ClickTotals(
            clicks=totals[0], uniques=totals[1], bot_clicks=totals[2], links_clicked=totals[3]
        ),
        top_links=[LinkClicks(code=code, clicks=n) for code, n, *_ in rows if n > 0],
    )
