"""Recording batches of clicks: raw events and their rollups, in one transaction.

A batch is recorded exactly once however often it is delivered: its id goes into
`click_batches` in the same transaction, with its raw events (the click log, one row
per batch), and a batch whose id is there already is skipped whole. At-least-once
delivery (a retried write whose commit was not acknowledged, a stream entry claimed
from a dead consumer) therefore gives exact counts.

This is the one write every click pays for, so it is written for cost
(docs/analytics.md has the figures): the batch is counted in Python first, so each
rollup row is one upsert however many clicks it holds; the statements go to the
driver as plain SQL with tuples (SQLAlchemy's per-row parameter processing cost more
than the database did); and a visitor already recorded by this process is not sent
again.
"""

from __future__ import annotations

import asyncio
import functools
import operator
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import compress
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.analytics.events import ClickEvent, DeviceClass, encode
from kurz.analytics.queue import batch_prefix
from kurz.cache import LRUCache
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import (
    click_batches,
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
# Rows per statement in a multi-row VALUES list: SQLite takes 32,766 parameters, and
# the rows of one statement are built and read back in one turn of the event loop.
_VALUES_ROWS = 1_000
# A batch is worked on SLICE events (or keys, or rows) at a time, and gives the event
# loop its turn once it has had TURN seconds of it. Not a turn per slice: a turn of a
# busy loop serves every connection that is ready, and a batch taking a slice per
# turn would fall behind the clicks those redirects make. TURN is what the redirects
# of one turn may wait for the batch.
# A batch that is behind (its queue filling up: redirects come faster than the loop's
# share left to the batch can record them) takes longer turns, up to MAX_TURN when the
# queue is full: a few milliseconds more on the redirects of those turns, where a
# full queue would drop clicks.
# A turn also lasts a share of the time the loop took to come back to the batch (from
# MIN_SHARE of it, empty, to MAX_SHARE, full; never past LONGEST): with 256
# connections, one round of the loop answers every ready one, some 20 ms of work, and
# 2 ms turns left the batch a tenth of the process, which is less than recording
# takes. The slowest the redirects can then get is about twice as slow, and only
# while the queue is full.
SLICE = 250
TURN = 0.002
MAX_TURN = 0.020
MIN_SHARE = 0.25
MAX_SHARE = 1.0
LONGEST = 0.1


def turn_for(behind: float, away: float = 0.0) -> float:
    """How long a turn a batch takes when its queue is `behind` (0 empty, 1 full) full
    and the loop took `away` seconds to come back to it."""
    behind = min(1.0, max(0.0, behind))
    share = MIN_SHARE + (MAX_SHARE - MIN_SHARE) * behind
    return min(LONGEST, max(TURN * (1 - behind) + MAX_TURN * behind, away * share))


T = TypeVar("T")


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
_BATCHES = _Insert(
    "click_batches", ("id", "events"), ("text", "text"), "ON CONFLICT DO NOTHING RETURNING id"
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
        # fetchall, not iteration: one call for the rows the driver holds already.
        return [tuple(row) for row in result.fetchall()] if returning else []
    # Many rows per statement, not executemany, which binds and steps a row at a time
    # and takes the interpreter lock back for each: fewer instructions per click
    # (docs/analytics.md). executemany would also drop what RETURNING gives.
    returned: list[tuple[Any, ...]] = []
    for start in range(0, len(rows), _VALUES_ROWS):
        chunk = rows[start : start + _VALUES_ROWS]
        flat = tuple(value for row in chunk for value in row)
        result = await conn.exec_driver_sql(insert.sqlite(len(chunk)), flat)
        if returning:
            returned.extend(tuple(row) for row in result.fetchall())
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


@dataclass(slots=True)
class _Counted:
    """A batch counted: a row per rollup key it touches."""

    # (link, period start) -> [clicks, bot clicks, uniques], uniques added later.
    hourly: dict[tuple[int, float], list[int]]
    daily: dict[tuple[int, float], list[int]]
    breakdowns: Counter[tuple[int, str, float, str]]
    visitors: set[VisitorKey]


class _Pace:
    """When the batch work under way last gave the event loop its turn, and how long
    the loop took to give it back."""

    since = time.perf_counter()
    away = 0.0
    # How full the queue behind the batch under way is; None: no batch (turn_for(0)).
    behind: float | None = None

    @classmethod
    async def turn(cls) -> None:
        """Give the event loop its turn if the batch has had its turn's length of it."""
        now = time.perf_counter()
        if now - cls.since >= turn_for(cls.behind or 0.0, cls.away):
            await asyncio.sleep(0)
            cls.since = time.perf_counter()
            cls.away = cls.since - now


async def _slices(items: Sequence[T]) -> AsyncIterator[Sequence[T]]:
    """`items` a SLICE at a time, the event loop given its turn between two when due."""
    for start in range(0, len(items), SLICE):
        if start:
            await _Pace.turn()
        yield items[start : start + SLICE]


async def _encode(events: Sequence[ClickEvent]) -> str:
    """`encode(events)`, a slice at a time."""
    parts = [encode(chunk)[1:-1] async for chunk in _slices(events)]
    return f"[{','.join(parts)}]"


# What a ClickEvent is counted by, besides its hour: (link, referrer, browser, os,
# device, bot, country); and the visitor of a click that is not a bot's, (link, visitor).
_KIND = operator.itemgetter(0, 2, 3, 4, 5, 6, 7)
_VISIT = operator.itemgetter(0, 8)
_AT = operator.itemgetter(1)
_BOT = operator.itemgetter(6)
Kind = tuple[int, str | None, str, str, DeviceClass, bool, str | None]


async def _count(events: Sequence[ClickEvent]) -> _Counted:
    """Count a batch, in one pass over its events; everything after it works on keys.

    A slice whose clicks all fall in one hour (nearly every one: a batch spans a
    second or so) is counted by C code alone (Counter.update over itemgetters), with
    no Python loop per event; a slice across an hour's end takes that loop.
    """
    kinds: dict[float, Counter[Kind]] = {}
    people: dict[float, set[tuple[int, str]]] = {}
    async for chunk in _slices(events):
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
        async for items in _slices(list(counted.items())):
            for (link, referrer, browser, os_family, device, bot, country), n in items:
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
    for hour, seen in people.items():
        day = hour - hour % DAY
        async for pairs in _slices(list(seen)):
            for link, visitor in pairs:
                visitors.add((HOUR, hour, link, visitor))
                visitors.add((DAY, day, link, visitor))
    return _Counted(hourly, daily, breakdowns, visitors)


async def record(
    conn: AsyncConnection,
    batches: Sequence[Batch],
    *,
    memory: VisitorMemory | None = None,
) -> Recorded:
    """Record (batch id, events) pairs in the caller's transaction, counted as one.

    A batch recorded before is skipped. `visitors` in the result are for
    `memory.remember`, once the transaction has committed.

    The batch is encoded, counted and turned into rows a SLICE at a time, on the
    event loop, which answers redirects every TURN seconds of it. Not in a thread: json.dumps
    runs in C and keeps the interpreter for all of its call, and a thread counting
    in Python made the loop wait a switch interval for the interpreter each time it
    wanted it back.
    """
    # The claim and the click log in one statement: a batch recorded before returns
    # no id, and its events are neither stored nor counted again.
    claimed = await _insert(
        conn, _BATCHES, [(ident, await _encode(batch)) for ident, batch in batches]
    )
    new = {row[0] for row in claimed}
    events = [event for ident, batch in batches if ident in new for event in batch]
    if not events:
        return Recorded(0, [])
    counted = await _count(events)
    to_sql = _sqlite_stamp if conn.dialect.name == "sqlite" else _postgres_stamp

    stamps: dict[float, Any] = {}

    def stamp(start: float) -> Any:
        """A period's start as bound: the same few hours and days, stamped once each."""
        stamped = stamps.get(start)
        if stamped is None:
            stamped = stamps[start] = to_sql(start)
        return stamped

    hourly, daily = counted.hourly, counted.daily
    fresh: list[VisitorKey] = []
    async for keys in _slices(list(counted.visitors)):
        fresh.extend(memory.unseen(keys) if memory else keys)
    await _count_new_visitors(conn, stamp, fresh, {HOUR: hourly, DAY: daily})

    rows: list[tuple[Any, ...]] = []
    async for items in _slices(list(hourly.items())):
        rows.extend((link, stamp(hour), *counts) for (link, hour), counts in items)
    await _insert(conn, _HOURLY, rows)
    rows = []
    async for items in _slices(list(daily.items())):
        rows.extend((link, stamp(day), *counts) for (link, day), counts in items)
    await _insert(conn, _DAILY, rows)
    rows = []
    async for kinds in _slices(list(counted.breakdowns.items())):
        rows.extend(
            (link, dimension, stamp(day), value, n) for (link, dimension, day, value), n in kinds
        )
    await _insert(conn, _BREAKDOWNS, rows)
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
        async for keys in _slices(visitors):
            for kind, start, link, visitor in keys:
                if kind == span:
                    stamped = stamp(start)
                    starts[stamped] = start
                    rows.append((stamped, link, visitor))
        if not rows:
            continue
        totals = counts[span]
        async for added in _slices(await _insert(conn, insert, rows)):
            for stamped, link in added:
                # RETURNING gives what was sent: a string on SQLite, an aware datetime
                # (equal to the one sent) on PostgreSQL.
                totals[link, starts[stamped]][2] += 1


class ClickStore:
    """Records batches in their own transactions, and forgets what is past keeping."""

    def __init__(self, db: Database, *, memory: VisitorMemory | None = None) -> None:
        self.db = db
        self.memory = memory if memory is not None else VisitorMemory()

    async def record(self, batches: Sequence[Batch], *, behind: float = 0.0) -> int:
        """Record batches in one transaction; how many clicks they added (none for a
        batch recorded before). `behind`: how full the queue they came from is (0 to
        1); the fuller, the longer the turns the work takes (turn_for)."""
        _Pace.behind = behind
        try:
            async with self.db.write(READ_COMMITTED) as conn:
                recorded = await record(conn, batches, memory=self.memory)
            async for keys in _slices(recorded.visitors):
                self.memory.remember(keys)
        finally:
            _Pace.behind = None
        return recorded.clicks

    async def purge(self, *, now: float, retention: float, chunk: int = 100) -> int:
        """Forget what is past keeping; how many batches' raw events went.

        - The click log: events older than `retention` seconds.
        - Batch ids: older than BATCH_MEMORY. A batch's row goes whole once both its
          events and its id are past use; while only its events are (a retention
          shorter than BATCH_MEMORY), they are set to NULL and its id stays.
        - Visitor sets: older than VISITOR_MEMORY.

        In transactions of up to `chunk` batches (each of up to 50,000 events), so that
        recording goes on meanwhile. Ids begin with their batch's time in hex: every id
        below a time's prefix is older, and each purge is a range of the key.
        """
        purged = await self._delete_batches(batch_prefix(now - max(retention, BATCH_MEMORY)), chunk)
        if retention < BATCH_MEMORY:
            purged += await self._drop_events(batch_prefix(now - retention), chunk)
        async with self.db.write(READ_COMMITTED) as conn:
            past = datetime.fromtimestamp(now - VISITOR_MEMORY, UTC)
            await conn.execute(
                sa.delete(link_visitors_hourly).where(link_visitors_hourly.c.hour < past)
            )
            await conn.execute(
                sa.delete(link_visitors_daily).where(link_visitors_daily.c.day < past)
            )
        return purged

    async def _delete_batches(self, below: str, chunk: int) -> int:
        """Delete the batches whose ids are below `below`; how many still had events."""
        batches = click_batches.c
        purged = 0
        while True:
            async with self.db.write(READ_COMMITTED) as conn:
                query = (
                    sa.select(batches.id, batches.events.is_not(None))
                    .where(batches.id < below)
                    .order_by(batches.id)
                    .limit(chunk)
                )
                rows = (await conn.execute(query)).all()
                if rows:
                    await conn.execute(sa.delete(click_batches).where(batches.id <= rows[-1][0]))
            purged += sum(1 for _, logged in rows if logged)
            if len(rows) < chunk:
                return purged

    async def _drop_events(self, below: str, chunk: int) -> int:
        """Drop the events of the batches whose ids are below `below`, keeping the ids."""
        batches = click_batches.c
        purged, after = 0, ""
        while True:
            async with self.db.write(READ_COMMITTED) as conn:
                query = (
                    sa.select(batches.id)
                    .where(batches.id > after, batches.id < below, batches.events.is_not(None))
                    .order_by(batches.id)
                    .limit(chunk)
                )
                ids = (await conn.execute(query)).scalars().all()
                if ids:
                    after = ids[-1]
                    update = sa.update(click_batches).where(batches.id.in_(ids))
                    await conn.execute(update.values(events=None))
            purged += len(ids)
            if len(ids) < chunk:
                return purged
