"""Recording batches of clicks: raw events and their rollups, in one transaction.

A batch is recorded exactly once however often it is delivered: its id goes into
`click_batches` in the same transaction, and a batch whose id is there already is
skipped whole. At-least-once delivery (a retried write whose commit was not
acknowledged, a stream entry claimed from a dead consumer) therefore gives exact
counts.

This is the one write every click pays for, so it is written for cost
(docs/analytics.md has the figures): the batch is counted in Python first, so each
rollup row is one upsert however many clicks it holds; the statements go to the
driver as plain SQL with tuples (SQLAlchemy's per-row parameter processing cost more
than the database did); and a visitor already recorded by this process is not sent
again.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.analytics.events import ClickEvent
from kurz.cache import LRUCache
from kurz.db import Database
from kurz.db.tables import (
    click_batches,
    click_events,
    link_visitors_daily,
    link_visitors_hourly,
)

HOUR = 3_600
DAY = 86_400
# How long a batch id is remembered: a batch delivered again later than this would
# count twice. Stream entries are claimed from a dead consumer within seconds
# (kurz.analytics.stream), so this is a week of every consumer being down at once.
BATCH_MEMORY = 7 * DAY
# How long the visitor sets are kept: a click arriving later than this for its hour
# would count its visitor as new.
VISITOR_MEMORY = 2 * DAY
# Rows per statement in a multi-row VALUES list: SQLite takes 32,766 parameters.
_VALUES_ROWS = 5_000


def _sqlite_stamp(at: float) -> str:
    # As SQLAlchemy's DateTime stores it on SQLite (UTCDateTime: naive, in UTC), which
    # the comparisons in readers' queries depend on: "YYYY-MM-DD HH:MM:SS.ffffff".
    return datetime.fromtimestamp(at, UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _postgres_stamp(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


@dataclass(frozen=True)
class _Insert:
    """An INSERT of many rows, as each dialect's driver takes it fastest."""

    table: str
    columns: tuple[str, ...]
    # PostgreSQL's names for the columns' types: the rows go as one array per column.
    types: tuple[str, ...]
    # ON CONFLICT ..., RETURNING ...
    tail: str = ""

    @functools.cache  # noqa: B019 (a few module-level statements, kept for good)
    def sqlite(self, rows: int) -> str:
        """VALUES with `rows` rows of placeholders."""
        values = ",".join(["(" + ",".join(["?"] * len(self.columns)) + ")"] * rows)
        # Names and clauses are this module's constants, never input.
        return f"INSERT INTO {self.table} ({', '.join(self.columns)}) VALUES {values} {self.tail}"  # noqa: S608

    @functools.cached_property
    def postgres(self) -> str:
        """unnest() of one array per column: one statement, one round trip."""
        arrays = ", ".join(f"${n}::{kind}[]" for n, kind in enumerate(self.types, 1))
        return (
            f"INSERT INTO {self.table} ({', '.join(self.columns)}) "  # noqa: S608
            f"SELECT * FROM unnest({arrays}) {self.tail}"
        )


def _counting(
    table: str, keys: tuple[str, ...], counters: tuple[str, ...], types: tuple[str, ...]
) -> _Insert:
    added = ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in counters)
    return _Insert(
        table,
        keys + counters,
        types,
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {added}",
    )


_TOTALS = ("clicks", "bot_clicks", "uniques")
_BATCHES = _Insert("click_batches", ("id",), ("text",), "ON CONFLICT DO NOTHING RETURNING id")
_EVENTS = _Insert(
    "click_events",
    ("link_id", "at", "referrer_host", "browser", "os", "device", "bot", "country", "visitor"),
    ("bigint", "timestamptz", "text", "text", "text", "text", "boolean", "text", "text"),
)
_HOURLY = _counting(
    "link_clicks_hourly",
    ("link_id", "hour"),
    _TOTALS,
    ("bigint", "timestamptz", "bigint", "bigint", "bigint"),
)
_DAILY = _counting(
    "link_clicks_daily",
    ("link_id", "day"),
    _TOTALS,
    ("bigint", "timestamptz", "bigint", "bigint", "bigint"),
)
_BREAKDOWNS = _counting(
    "link_breakdowns_daily",
    ("link_id", "dimension", "day", "value"),
    ("clicks",),
    ("bigint", "text", "timestamptz", "text", "bigint"),
)
_VISITORS = {
    span: _Insert(
        table,
        (period, "link_id", "visitor"),
        ("timestamptz", "bigint", "text"),
        f"ON CONFLICT DO NOTHING RETURNING {period}, link_id",
    )
    for span, table, period in (
        (HOUR, "link_visitors_hourly", "hour"),
        (DAY, "link_visitors_daily", "day"),
    )
}


async def _insert(
    conn: AsyncConnection, insert: _Insert, rows: Sequence[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """Insert `rows`; what RETURNING gave, if the statement has it."""
    if not rows:
        return []
    returning = "RETURNING" in insert.tail
    if conn.dialect.name != "sqlite":
        columns = tuple(list(column) for column in zip(*rows, strict=True))
        result = await conn.exec_driver_sql(insert.postgres, columns)
        return [tuple(row) for row in result] if returning else []
    if not returning:
        # One statement, run per row in C by sqlite3's executemany.
        await conn.exec_driver_sql(insert.sqlite(1), list(rows))
        return []
    # executemany drops what RETURNING gives: many rows per statement instead, as
    # many as SQLite's limit on parameters allows.
    returned: list[tuple[Any, ...]] = []
    for start in range(0, len(rows), _VALUES_ROWS):
        chunk = rows[start : start + _VALUES_ROWS]
        flat = tuple(value for row in chunk for value in row)
        returned.extend(
            tuple(row) for row in await conn.exec_driver_sql(insert.sqlite(len(chunk)), flat)
        )
    return returned


# A visitor of an hour or of a day: (HOUR or DAY, start of the period, link, visitor).
VisitorKey = tuple[int, float, int, str]


class VisitorMemory:
    """The visitors of recent hours and days this process has recorded (committed).

    Such a visitor's row is in the database already, so its insert would do nothing:
    it is not sent. Only an optimisation: a visitor recorded by another process is
    sent, and the database's ON CONFLICT has the last word.
    """

    __slots__ = ("_seen",)

    def __init__(self, max_entries: int = 200_000) -> None:
        self._seen: LRUCache[VisitorKey, bool] = LRUCache(max_entries)

    def unseen(self, keys: Iterable[VisitorKey]) -> list[VisitorKey]:
        seen = self._seen
        return [key for key in keys if seen.get(key) is None]

    def remember(self, keys: Iterable[VisitorKey]) -> None:
        seen = self._seen
        for key in keys:
            seen.put(key, True)


@dataclass(slots=True)
class Recorded:
    """What recording a batch did: clicks counted, and visitor rows now in the database."""

    clicks: int
    visitors: list[VisitorKey]


Batch = tuple[str, Sequence[ClickEvent]]


async def record(
    conn: AsyncConnection,
    batches: Sequence[Batch],
    *,
    memory: VisitorMemory | None = None,
) -> Recorded:
    """Record (batch id, events) pairs in the caller's transaction, counted as one.

    A batch recorded before is skipped. `visitors` in the result are for
    `memory.remember`, once the transaction has committed.
    """
    sqlite = conn.dialect.name == "sqlite"
    new = {row[0] for row in await _insert(conn, _BATCHES, [(ident,) for ident, _ in batches])}
    events = [event for ident, batch in batches if ident in new for event in batch]
    if not events:
        return Recorded(0, [])
    to_sql = _sqlite_stamp if sqlite else _postgres_stamp
    stamps: dict[float, Any] = {}

    def stamp(start: float) -> Any:
        """A period's start as bound: the same few hours and days, stamped once each."""
        stamped = stamps.get(start)
        if stamped is None:
            stamped = stamps[start] = to_sql(start)
        return stamped

    # One pass over the events; everything after it works on distinct keys.
    tally: Counter[tuple[int, float, bool, str | None, str, str, str, str | None]] = Counter()
    hour_visitors: set[tuple[float, int, str]] = set()
    raw = []
    for e in events:
        at = e.at
        hour = at - at % HOUR
        tally[e.link_id, hour, e.bot, e.referrer_host, e.browser, e.os, e.device, e.country] += 1
        if not e.bot:
            hour_visitors.add((hour, e.link_id, e.visitor))
        raw.append(
            (
                e.link_id,
                to_sql(at),
                e.referrer_host,
                e.browser,
                e.os,
                e.device,
                e.bot,
                e.country,
                e.visitor,
            )
        )
    if sqlite:
        await _insert(conn, _EVENTS, raw)
    else:
        # COPY: the raw events are most of the rows, and asyncpg encodes arrays for
        # unnest() at about 9 us per event (it checks every element for nesting).
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        await driver.copy_records_to_table(
            _EVENTS.table, records=raw, columns=list(_EVENTS.columns)
        )

    hourly: dict[tuple[int, float], list[int]] = {}
    daily: dict[tuple[int, float], list[int]] = {}
    breakdowns: Counter[tuple[int, str, float, str]] = Counter()
    for (link, hour, bot, referrer, browser, os_family, device, country), n in tally.items():
        day = hour - hour % DAY
        column = 1 if bot else 0
        hourly.setdefault((link, hour), [0, 0, 0])[column] += n
        daily.setdefault((link, day), [0, 0, 0])[column] += n
        if bot:
            breakdowns[link, "bot", day, browser] += n
        else:
            breakdowns[link, "referrer", day, (referrer or "(direct)")[:255]] += n
            breakdowns[link, "browser", day, browser] += n
            breakdowns[link, "os", day, os_family] += n
            breakdowns[link, "device", day, device] += n
            breakdowns[link, "country", day, country or "(unknown)"] += n

    visitors: set[VisitorKey] = set()
    for hour, link, visitor in hour_visitors:
        visitors.add((HOUR, hour, link, visitor))
        visitors.add((DAY, hour - hour % DAY, link, visitor))
    fresh = memory.unseen(visitors) if memory else list(visitors)
    await _count_new_visitors(conn, stamp, fresh, {HOUR: hourly, DAY: daily})

    await _insert(
        conn, _HOURLY, [(link, stamp(hour), *counts) for (link, hour), counts in hourly.items()]
    )
    await _insert(
        conn, _DAILY, [(link, stamp(day), *counts) for (link, day), counts in daily.items()]
    )
    await _insert(
        conn,
        _BREAKDOWNS,
        [
            (link, dimension, stamp(day), value, n)
            for (link, dimension, day, value), n in breakdowns.items()
        ],
    )
    return Recorded(len(events), fresh)


async def _count_new_visitors(
    conn: AsyncConnection,
    stamp: Callable[[float], Any],
    visitors: list[VisitorKey],
    counts: dict[int, dict[tuple[int, float], list[int]]],
) -> None:
    """Insert the visitor rows, and add one unique per row that was not there yet."""
    for span, insert in _VISITORS.items():
        starts: dict[Any, float] = {}
        rows = []
        for kind, start, link, visitor in visitors:
            if kind == span:
                stamped = stamp(start)
                starts[stamped] = start
                rows.append((stamped, link, visitor))
        if not rows:
            continue
        totals = counts[span]
        for stamped, link in await _insert(conn, insert, rows):
            # RETURNING gives what was sent: a string on SQLite, an aware datetime
            # (equal to the one sent) on PostgreSQL.
            totals[link, starts[stamped]][2] += 1


class ClickStore:
    """Records batches in their own transactions, and forgets what is past keeping."""

    def __init__(self, db: Database, *, memory: VisitorMemory | None = None) -> None:
        self.db = db
        self.memory = memory if memory is not None else VisitorMemory()

    async def record(self, batches: Sequence[Batch]) -> int:
        """Record batches in one transaction; how many clicks they added (none for a
        batch recorded before)."""
        async with self.db.write() as conn:
            recorded = await record(conn, batches, memory=self.memory)
        self.memory.remember(recorded.visitors)
        return recorded.clicks

    async def purge(self, *, now: float, retention: float, chunk: int = 10_000) -> int:
        """Delete raw events older than `retention` seconds, batch ids and visitor sets
        past their use; how many events went. In short transactions, so that
        recording goes on meanwhile.

        Events go from the lowest ids up (ids ascend with time): each round looks at
        the oldest `chunk` rows and deletes those past retention, and the purge stops
        at a round with none. A late event younger than the cutoff among old ones stays
        until it is old itself.
        """
        cutoff = datetime.fromtimestamp(now - retention, UTC)
        purged = 0
        while True:
            async with self.db.write() as conn:
                oldest = (
                    await conn.execute(
                        sa.select(click_events.c.id, click_events.c.at)
                        .order_by(click_events.c.id)
                        .limit(chunk)
                    )
                ).all()
                old = [row.id for row in oldest if row.at < cutoff]
                if old:
                    await conn.execute(
                        sa.delete(click_events).where(
                            click_events.c.id <= max(old), click_events.c.at < cutoff
                        )
                    )
            purged += len(old)
            if len(old) < chunk:
                break
        async with self.db.write() as conn:
            # Ids begin with their time in hex: every id below this prefix is older.
            forgotten = f"{int((now - BATCH_MEMORY) * 1000):012x}"
            await conn.execute(sa.delete(click_batches).where(click_batches.c.id < forgotten))
            past = datetime.fromtimestamp(now - VISITOR_MEMORY, UTC)
            await conn.execute(
                sa.delete(link_visitors_hourly).where(link_visitors_hourly.c.hour < past)
            )
            await conn.execute(
                sa.delete(link_visitors_daily).where(link_visitors_daily.c.day < past)
            )
        return purged
