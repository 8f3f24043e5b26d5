"""Recording batches of clicks: raw events and their rollups, in one transaction.

A batch is recorded exactly once however often it is delivered: its id goes into
`click_batches` in the same transaction, with its raw events (the click log, one row
per batch), and a batch whose id is there already is skipped whole. At-least-once
delivery (a retried write whose commit was not acknowledged, a stream entry claimed
from a dead consumer) therefore gives exact counts.

This is the one write every click pays for, so it is written for cost
(docs/analytics.md has the figures): the batch is counted in Python first
(kurz.analytics.counting), so each rollup row is one upsert however many clicks it
holds; the statements go to the driver as plain SQL with tuples (SQLAlchemy's
per-row parameter processing cost more than the database did); and a visitor
already recorded by this process is not sent again. What is past keeping is
forgotten by kurz.analytics.retention.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.analytics.counting import DAY, HOUR, VisitorKey, count
from kurz.analytics.events import ClickEvent, encode
from kurz.analytics.pacing import Pace, slices
from kurz.analytics.retention import purge as retention_purge
from kurz.cache import LRUCache
from kurz.db import READ_COMMITTED, Database
from kurz.db.owners import lock_owners

# Rows per statement in a multi-row VALUES list: SQLite takes 32,766 parameters, and
# the rows of one statement are built and read back in one turn of the event loop.
_VALUES_ROWS = 1_000


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
    # Instead of inserting the rows into `table` as they are: a statement that reads
    # them as `v` (an INSERT ... SELECT over them joined to other tables).
    reading: str = ""

    def _statement(self, rows: str) -> str:
        # Names and clauses are this module's constants, never input.
        if self.reading:
            return f"WITH v ({', '.join(self.columns)}) AS ({rows}) {self.reading}"
        return f"INSERT INTO {self.table} ({', '.join(self.columns)}) {rows} {self.tail}"

    @functools.cache  # noqa: B019 (a few module-level statements, kept for good)
    def sqlite(self, rows: int) -> str:
        """VALUES with `rows` rows of placeholders."""
        values = ",".join(["(" + ",".join(["?"] * len(self.columns)) + ")"] * rows)
        return self._statement(f"VALUES {values}")

    @functools.cached_property
    def postgres(self) -> str:
        """unnest() of one array per column: one statement, one round trip."""
        arrays = ", ".join(f"${n}::{kind}[]" for n, kind in enumerate(self.types, 1))
        return self._statement(f"SELECT * FROM unnest({arrays})")  # noqa: S608


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
# The batch's daily rows again, summed by their links' owners (joined in the statement:
# the batch knows links, not users) into the per-owner rollups. Ordered by key, so
# that concurrent recorders take the rows' locks in one order. See docs/analytics.md,
# "Per owner".
_DAY_ROWS, _DAY_TYPES = _DAILY.columns, _DAILY.types
_OWNER_DAILY = _Insert(
    "owner_clicks_daily",
    _DAY_ROWS,
    _DAY_TYPES,
    reading="INSERT INTO owner_clicks_daily (user_id, day, clicks, bot_clicks, uniques) "
    "SELECT l.user_id, v.day, sum(v.clicks), sum(v.bot_clicks), sum(v.uniques) "
    "FROM v JOIN links l ON l.id = v.link_id "
    "GROUP BY l.user_id, v.day ORDER BY l.user_id, v.day "
    "ON CONFLICT (user_id, day) DO UPDATE SET "
    + ", ".join(f"{name} = owner_clicks_daily.{name} + excluded.{name}" for name in _TOTALS),
)
_LINK_TOTALS = _Insert(
    "link_clicks_total",
    _DAY_ROWS,
    _DAY_TYPES,
    # The owner is set again on every batch, so a row follows its link to a new user.
    reading="INSERT INTO link_clicks_total (link_id, user_id, clicks) "
    "SELECT v.link_id, l.user_id, sum(v.clicks) FROM v JOIN links l ON l.id = v.link_id "
    "GROUP BY v.link_id, l.user_id HAVING sum(v.clicks) > 0 ORDER BY v.link_id "
    "ON CONFLICT (link_id) DO UPDATE SET user_id = excluded.user_id, "
    "clicks = link_clicks_total.clicks + excluded.clicks",
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
    conn: AsyncConnection, insert: _Insert, rows: Sequence[tuple[Any, ...]], *more: _Insert
) -> list[tuple[Any, ...]]:
    """Insert `rows`; what RETURNING gave, if the statement has it. `more`: statements
    that read the same rows, run after it with the same parameters."""
    returned: list[tuple[Any, ...]] = []
    if not rows:
        return returned
    returning = "RETURNING" in insert.tail
    if conn.dialect.name != "sqlite":
        columns = tuple(list(column) for column in zip(*rows, strict=True))
        result = await conn.exec_driver_sql(insert.postgres, columns)
        if returning:
            # fetchall, not iteration: one call for the rows the driver holds already.
            returned = [tuple(row) for row in result.fetchall()]
        for also in more:
            await conn.exec_driver_sql(also.postgres, columns)
        return returned
    # Many rows per statement, not executemany, which binds and steps a row at a time
    # and takes the interpreter lock back for each: fewer instructions per click
    # (docs/analytics.md). executemany would also drop what RETURNING gives.
    for start in range(0, len(rows), _VALUES_ROWS):
        chunk = rows[start : start + _VALUES_ROWS]
        flat = tuple(value for row in chunk for value in row)
        result = await conn.exec_driver_sql(insert.sqlite(len(chunk)), flat)
        if returning:
            returned.extend(tuple(row) for row in result.fetchall())
        for also in more:
            await conn.exec_driver_sql(also.sqlite(len(chunk)), flat)
    return returned


# A count of all time with no days, carried over from elsewhere (kurz.imports): into
# the link's total only.
_UNDATED_TOTALS = _Insert(
    "link_clicks_total",
    ("link_id", "clicks"),
    ("bigint", "bigint"),
    reading="INSERT INTO link_clicks_total (link_id, user_id, clicks) "
    "SELECT v.link_id, l.user_id, v.clicks FROM v JOIN links l ON l.id = v.link_id "
    "WHERE v.clicks > 0 ORDER BY v.link_id "
    "ON CONFLICT (link_id) DO UPDATE SET user_id = excluded.user_id, "
    "clicks = link_clicks_total.clicks + excluded.clicks",
)


async def add_counts(
    conn: AsyncConnection,
    *,
    daily: Sequence[tuple[int, datetime, int, int, int]] = (),
    hourly: Sequence[tuple[int, datetime, int, int, int]] = (),
    breakdowns: Sequence[tuple[int, str, datetime, str, int]] = (),
    undated: Sequence[tuple[int, int]] = (),
) -> None:
    """Counts carried over from elsewhere (kurz.imports), added in the caller's
    transaction to the rollups a batch of clicks adds to: daily rows (link, day,
    clicks, bot clicks, uniques) and with them the owners' days and the links' totals;
    hourly rows alike; breakdown rows (link, dimension, day, value, clicks); and counts
    with no day (link, clicks), to the links' totals only. A day's breakdown rows must
    come with that day's daily row (kurz.analytics.settled relies on it)."""
    to_sql = _sqlite_stamp if conn.dialect.name == "sqlite" else _postgres_stamp

    def stamp(at: datetime) -> Any:
        return to_sql(at.timestamp())

    await _insert(conn, _HOURLY, [(link, stamp(hour), *counts) for link, hour, *counts in hourly])
    await _insert(
        conn, _BREAKDOWNS, [(link, d, stamp(day), v, n) for link, d, day, v, n in breakdowns]
    )
    if daily or undated:
        await lock_owners(conn, exclusive=False)
    day_rows = [(link, stamp(day), *counts) for link, day, *counts in daily]
    await _insert(conn, _DAILY, day_rows)
    await _insert(conn, _OWNER_DAILY, day_rows, _LINK_TOTALS)
    await _insert(conn, _UNDATED_TOTALS, list(undated))


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
    """What recording a batch did: clicks counted, visitor rows now in the database,
    and the events recorded (those of batches not recorded before)."""

    clicks: int
    visitors: list[VisitorKey]
    events: Sequence[ClickEvent] = ()


class Follower(Protocol):
    """Hears the clicks a batch recorded, in the batch's own transaction, so that what
    it writes commits with them or not at all (kurz.webhooks.clicks)."""

    async def __call__(self, conn: AsyncConnection, events: Sequence[ClickEvent], /) -> None: ...


Batch = tuple[str, Sequence[ClickEvent]]


async def _encode(events: Sequence[ClickEvent]) -> str:
    """`encode(events)`, a slice at a time."""
    parts = [encode(chunk)[1:-1] async for chunk in slices(events)]
    return f"[{','.join(parts)}]"


async def record(
    conn: AsyncConnection,
    batches: Sequence[Batch],
    *,
    memory: VisitorMemory | None = None,
) -> Recorded:
    """Record (batch id, events) pairs in the caller's transaction, counted as one.

    A batch recorded before is skipped. `visitors` in the result are for
    `memory.remember`, once the transaction has committed.

    The batch is encoded, counted and turned into rows a slice at a time, on the
    event loop, which answers redirects between slices (kurz.analytics.pacing). Not
    in a thread: json.dumps runs in C and keeps the interpreter for all of its call,
    and a thread counting in Python made the loop wait a switch interval for the
    interpreter each time it wanted it back.
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
    counted = await count(events)
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
    async for keys in slices(list(counted.visitors)):
        fresh.extend(memory.unseen(keys) if memory else keys)
    await _count_new_visitors(conn, stamp, fresh, {HOUR: hourly, DAY: daily})

    rows: list[tuple[Any, ...]] = []
    async for items in slices(list(hourly.items())):
        rows.extend((link, stamp(hour), *counts) for (link, hour), counts in items)
    await _insert(conn, _HOURLY, rows)
    rows = []
    async for items in slices(list(daily.items())):
        rows.extend((link, stamp(day), *counts) for (link, day), counts in items)
    await _insert(conn, _DAILY, rows)
    day_rows, rows = rows, []
    # Each breakdown row written comes with its day's daily row, in this transaction:
    # the stats' settled sums (kurz.analytics.settled) rely on it. (add_counts, the
    # only other writer, keeps the same rule.)
    async for kinds in slices(list(counted.breakdowns.items())):
        rows.extend(
            (link, dimension, stamp(day), value, n) for (link, dimension, day, value), n in kinds
        )
    await _insert(conn, _BREAKDOWNS, rows)
    # Last: every batch of an owner's clicks updates the owner's row of the day, which
    # is then locked only until the commit that follows.
    await lock_owners(conn, exclusive=False)
    await _insert(conn, _OWNER_DAILY, day_rows, _LINK_TOTALS)
    return Recorded(len(events), fresh, events)


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
        async for keys in slices(visitors):
            for kind, start, link, visitor in keys:
                if kind == span:
                    stamped = stamp(start)
                    starts[stamped] = start
                    rows.append((stamped, link, visitor))
        if not rows:
            continue
        totals = counts[span]
        async for added in slices(await _insert(conn, insert, rows)):
            for stamped, link in added:
                # RETURNING gives what was sent: a string on SQLite, an aware datetime
                # (equal to the one sent) on PostgreSQL.
                totals[link, starts[stamped]][2] += 1


class ClickStore:
    """Records batches in their own transactions, remembering the visitors it recorded."""

    def __init__(
        self,
        db: Database,
        *,
        memory: VisitorMemory | None = None,
        follower: Follower | None = None,
    ) -> None:
        self.db = db
        self.memory = memory if memory is not None else VisitorMemory()
        self.follower = follower

    async def record(self, batches: Sequence[Batch], *, behind: float = 0.0) -> int:
        """Record batches in one transaction; how many clicks they added (none for a
        batch recorded before). `behind`: how full the queue they came from is (0 to
        1); the fuller, the longer the turns the work takes (pacing.turn_for)."""
        Pace.behind = behind
        try:
            async with self.db.write(READ_COMMITTED) as conn:
                recorded = await record(conn, batches, memory=self.memory)
                if self.follower is not None and recorded.events:
                    await self.follower(conn, recorded.events)
            async for keys in slices(recorded.visitors):
                self.memory.remember(keys)
        finally:
            Pace.behind = None
        return recorded.clicks

    async def purge(self, *, now: float, retention: float, chunk: int = 100) -> int:
        """kurz.analytics.retention.purge over this store's database."""
        return await retention_purge(db=self.db, now=now, retention=retention, chunk=chunk)
