"""Lab 2: what a secondary index costs each write, what it buys each read, and when neither.

    python -m bench.lab.indexing [--rows 100000] [--links 200000] [--quick]
                                 [--backends sqlite,postgresql] [--plans] [--write]

Part 1, writes: a links-shaped table and a table with a row per click, with 0, 1, 3 and
6 secondary indexes; `--rows` rows inserted in transactions of 1,000, as rows/s and as
the size of the table and of its secondary indexes. For comparison, the same clicks as
kurz keeps them: a row per batch of 1,000 (ADR 0010).

Part 2, reads: kurz's schema, made by its migrations, holding `--links` links over 1,000
users (a key each), with tags and click rollups. Each query is captured from the service function
that sends it, then explained and timed as sent, with its index and with that index
dropped (restored afterwards).

Part 3: an index on a boolean, which the planner ignores or should; a function on an
indexed column, and the expression index that serves it; and, from part 1, what the
indexes that no query needs cost a table written once per click.

The prose in docs/lab/indexing.md says what the figures mean.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sqlite3
import statistics
import string
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection

from bench import figures
from bench.harness import command_line
from bench.lab.page import (
    header,
    postgres_database,
    postgres_version,
    publish,
    sqlite_database,
    table,
)
from kurz.analytics import stats
from kurz.analytics.events import click_event, encode
from kurz.analytics.queue import batch_prefix
from kurz.auth.models import MEMBER_SCOPES, SCOPES, Principal
from kurz.db import READ_COMMITTED, Database, upgrade
from kurz.db.tables import links, metadata
from kurz.links import queries
from kurz.links.search import Search

BACKENDS = ("sqlite", "postgresql")
NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
BATCH = 1_000
INDEX_COUNTS = (0, 1, 3, 6)
USERS = 1_000
NOW = datetime(2026, 6, 1, tzinfo=UTC)
START = NOW - timedelta(days=365)
GRACE = timedelta(days=30)  # KURZ_EXPIRED_LINK_GRACE's default
BASE_URL = "https://k.example"
PAGE = 20  # the API's default page
ALPHABET = string.digits + string.ascii_letters
WARM_UP = 3


def _stamp(at: datetime) -> str:
    """A time as kurz stores it on SQLite (naive UTC text, to the microsecond)."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _code(rng: random.Random, length: int = 7) -> str:
    return "".join(rng.choices(ALPHABET, k=length))


# Part 1: the cost of writing ------------------------------------------------------------

# A column kind's type on SQLite and on PostgreSQL (and its array type for unnest).
TYPES = {
    "id": ("INTEGER PRIMARY KEY", "BIGINT PRIMARY KEY", "bigint"),
    "int": ("INTEGER NOT NULL", "BIGINT NOT NULL", "bigint"),
    "text": ("TEXT NOT NULL", "TEXT NOT NULL", "text"),
    "bool": ("BOOLEAN NOT NULL", "BOOLEAN NOT NULL", "boolean"),
    "time": ("TEXT", "TIMESTAMPTZ", "timestamptz"),
    "key": ("TEXT PRIMARY KEY", "TEXT PRIMARY KEY", "text"),
    "json": ("TEXT", "TEXT", "text"),
}


@dataclass(frozen=True, slots=True)
class SecondaryIndex:
    columns: str
    serves: str
    unique: bool = False
    where: str = ""


@dataclass(frozen=True, slots=True)
class Shape:
    """A table written in part 1, with the indexes it may get, in the order they are added."""

    name: str
    columns: tuple[tuple[str, str], ...]
    indexes: tuple[SecondaryIndex, ...]
    # On SQLite, as kurz's click_batches: the key is the table.
    without_rowid: bool = False

    def create(self, backend: str) -> list[str]:
        sqlite = backend == "sqlite"
        body = ", ".join(f"{name} {TYPES[kind][0 if sqlite else 1]}" for name, kind in self.columns)
        tail = " WITHOUT ROWID" if sqlite and self.without_rowid else ""
        return [f"DROP TABLE IF EXISTS {self.name}", f"CREATE TABLE {self.name} ({body}){tail}"]

    def create_indexes(self, count: int) -> list[str]:
        return [
            f"CREATE {'UNIQUE ' if index.unique else ''}INDEX {self.name}_{n} "
            f"ON {self.name} ({index.columns})" + (f" WHERE {index.where}" if index.where else "")
            for n, index in enumerate(self.indexes[:count], 1)
        ]


LINKS = Shape(
    "w_links",
    (
        ("id", "id"),
        ("code", "text"),
        ("url", "text"),
        ("user_id", "int"),
        ("is_alias", "bool"),
        ("created_at", "time"),
        ("expires_at", "time"),
        ("deleted_at", "time"),
    ),
    (
        SecondaryIndex("code", "the redirect (random order)", unique=True),
        SecondaryIndex("user_id, id", "a user's listing", where="deleted_at IS NULL"),
        SecondaryIndex(
            "expires_at",
            "the expiry purge",
            where="deleted_at IS NULL AND expires_at IS NOT NULL",
        ),
        SecondaryIndex("created_at", "links made in a period"),
        SecondaryIndex("url", "is this URL shortened already? (long keys)"),
        SecondaryIndex("is_alias", "aliases only (two values)"),
    ),
)

CLICKS = Shape(
    "w_clicks",
    (
        ("id", "id"),
        ("link_id", "int"),
        ("at", "time"),
        ("country", "text"),
        ("referrer", "text"),
        ("device", "text"),
        ("visitor", "text"),
    ),
    (
        SecondaryIndex("link_id, at", "a link's clicks over time (random order)"),
        SecondaryIndex("at", "the retention purge (in order)"),
        SecondaryIndex("visitor", "a visitor's clicks, for uniques (random order)"),
        SecondaryIndex("country", "clicks by country"),
        SecondaryIndex("referrer", "clicks by referrer"),
        SecondaryIndex("device", "clicks by device"),
    ),
)

COUNTRIES = [f"C{n:02d}" for n in range(80)]
REFERRERS = [f"site{n}.example" for n in range(300)]
DEVICES = ["desktop", "mobile", "tablet", "other"]


def link_rows(count: int, rng: random.Random) -> list[tuple[Any, ...]]:
    rows = []
    for n in range(1, count + 1):
        created = START + timedelta(seconds=n * 30)
        expires = NOW + timedelta(days=rng.uniform(1, 365)) if rng.random() < 0.1 else None
        url = f"https://www.site{rng.randrange(10_000)}.example/{rng.getrandbits(96):x}"
        user = rng.randrange(1, USERS + 1)
        rows.append((n, _code(rng), url, user, rng.random() < 0.02, created, expires, None))
    return rows


def click_rows(count: int, rng: random.Random) -> list[tuple[Any, ...]]:
    """Clicks in time order, on 10,000 links: a link's clicks are far apart in the table."""
    return [
        (
            n,
            rng.randrange(1, 10_001),
            NOW + timedelta(milliseconds=10 * n),
            rng.choice(COUNTRIES),
            rng.choice(REFERRERS),
            rng.choice(DEVICES),
            f"{rng.getrandbits(64):016x}",
        )
        for n in range(1, count + 1)
    ]


def batch_rows(clicks: Sequence[tuple[Any, ...]], rng: random.Random) -> list[tuple[str, str]]:
    """The same clicks as kurz's click log holds them: a row per batch of 1,000 (ADR 0010)."""
    rows = []
    for start in range(0, len(clicks), BATCH):
        events = [
            click_event(
                link_id=link_id,
                at=at.timestamp(),
                referrer_host=referrer,
                browser="Firefox",
                os="Linux",
                device=device,
                bot=False,
                country=country,
                visitor=visitor,
            )
            for _, link_id, at, country, referrer, device, visitor in clicks[start : start + BATCH]
        ]
        ident = batch_prefix(events[0][1]) + f"{rng.getrandbits(80):020x}"
        rows.append((ident, encode(events)))
    return rows


BATCHES = Shape("w_batches", (("id", "key"), ("events", "json")), (), without_rowid=True)


@dataclass(frozen=True, slots=True)
class Written:
    rows: int
    seconds: float
    table_bytes: int
    index_bytes: int

    @property
    def per_second(self) -> float:
        return self.rows / self.seconds

    @property
    def us_per_row(self) -> float:
        return self.seconds / self.rows * 1e6


def sqlite_write(
    path: str, shape: Shape, rows: Sequence[tuple[Any, ...]], indexes: int, *, per_tx: int
) -> Written:
    """Insert `rows`, `per_tx` to a transaction, with kurz's pragmas (WAL, synchronous=NORMAL)."""
    stamped = [tuple(_stamp(v) if isinstance(v, datetime) else v for v in row) for row in rows]
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        for ddl in shape.create("sqlite") + shape.create_indexes(indexes):
            db.execute(ddl)
        marks = ", ".join("?" * len(shape.columns))
        insert = f"INSERT INTO {shape.name} VALUES ({marks})"  # noqa: S608 (our own names)
        started = time.perf_counter()
        for start in range(0, len(stamped), per_tx):
            db.execute("BEGIN")
            db.executemany(insert, stamped[start : start + per_tx])
            db.execute("COMMIT")
        seconds = time.perf_counter() - started
        sizes = dict(db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"))
        names = [
            name
            for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
                (shape.name,),
            )
        ]
        db.execute(f"DROP TABLE {shape.name}")
    return Written(len(rows), seconds, sizes[shape.name], sum(sizes[name] for name in names))


async def postgres_write(
    url: str, shape: Shape, rows: Sequence[tuple[Any, ...]], indexes: int, *, per_tx: int
) -> Written:
    """Insert `rows`, `per_tx` to a transaction, each as one unnest() (as kurz.analytics.store)."""
    arrays = ", ".join(f"${n}::{TYPES[kind][2]}[]" for n, (_, kind) in enumerate(shape.columns, 1))
    insert = f"INSERT INTO {shape.name} SELECT * FROM unnest({arrays})"  # noqa: S608
    batches = [
        [list(column) for column in zip(*rows[start : start + per_tx], strict=True)]
        for start in range(0, len(rows), per_tx)
    ]
    conn = await asyncpg.connect(url)
    try:
        for ddl in shape.create("postgresql") + shape.create_indexes(indexes):
            await conn.execute(ddl)
        started = time.perf_counter()
        for columns in batches:
            async with conn.transaction():
                await conn.execute(insert, *columns)
        seconds = time.perf_counter() - started
        table_bytes, index_bytes = await conn.fetchrow(
            "SELECT pg_table_size($1::text::regclass),"
            " pg_indexes_size($1::text::regclass) - pg_relation_size($2::text::regclass)",
            shape.name,
            f"{shape.name}_pkey",
        )
        await conn.execute(f"DROP TABLE {shape.name}")
    finally:
        await conn.close()
    return Written(len(rows), seconds, table_bytes, index_bytes)


async def write_cost(
    backend: str, target: str, shape: Shape, rows: Sequence[tuple[Any, ...]], indexes: int, *,
    rounds: int, per_tx: int = BATCH,
) -> Written:  # fmt: skip
    """The median of `rounds` fresh tables' inserts."""
    runs = []
    for _ in range(rounds):
        if backend == "sqlite":
            runs.append(sqlite_write(target, shape, rows, indexes, per_tx=per_tx))
        else:
            runs.append(await postgres_write(target, shape, rows, indexes, per_tx=per_tx))
    seconds = statistics.median(run.seconds for run in runs)
    return Written(runs[-1].rows, seconds, runs[-1].table_bytes, runs[-1].index_bytes)


# Part 2: kurz's schema, filled -------------------------------------------------------

TAGS = [f"tag{n:03d}" for n in range(200)]
# Tag n is drawn with weight 1/(n+1): a few tags are on many links, most on few.
TAG_WEIGHTS = [1 / (n + 1) for n in range(len(TAGS))]
POPULAR_TAG, RARE_TAG = TAGS[0], TAGS[-1]


Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Filled:
    """What the queries of part 2 ask for, from the data made."""

    code: str
    stats_link: int
    # The user whose links are listed (the stats link's), and the admin.
    user: int
    admin: int
    rows: dict[str, int]


def kurz_rows(count: int, rng: random.Random) -> tuple[dict[str, list[Row]], Filled]:
    """Rows for kurz's tables by column name, keyed by table, with times as datetimes:
    USERS members and an admin, a key each (the key's id is its user's)."""
    admin = USERS + 1
    users = [
        {"id": n, "email": f"user{n}@example.com", "role": "admin" if n == admin else "member",
         "created_at": START}
        for n in range(1, admin + 1)
    ]  # fmt: skip
    keys = [
        {"id": n, "name": f"key {n}", "prefix": f"k{n:07d}",
         "secret_hash": f"{rng.getrandbits(256):064x}", "user_id": n, "created_at": START,
         "scopes": "links:read links:write stats:read" + (" admin" if n == admin else "")}
        for n in range(1, admin + 1)
    ]  # fmt: skip
    link_list: list[Row] = []
    tags: list[Row] = []
    cutoff = NOW - GRACE
    for n in range(1, count + 1):
        created = START + (NOW - START) * n / count
        alias = rng.random() < 0.02
        code = f"alias-{n}" if alias else _code(rng)
        expires = None
        if rng.random() < 0.1:
            # Links the purge has not retired yet expired since its last run: the hour
            # before the cutoff. The rest expire later.
            expires = cutoff + timedelta(hours=rng.uniform(-1, 24 * 400))
        deleted = created + timedelta(days=1) if rng.random() < 0.05 else None
        url = f"https://www.site{rng.randrange(10_000)}.example/{rng.getrandbits(96):x}"
        user = rng.randrange(1, USERS + 1)
        link_list.append(
            {"id": n, "code": code, "url": url, "is_alias": alias, "user_id": user,
             "created_by_user_id": user, "created_by_key_id": user, "created_at": created,
             "updated_at": created, "expires_at": expires, "redirect_status": 302,
             "forward_query": False, "deleted_at": deleted}
        )  # fmt: skip
        chosen = rng.choices(TAGS, TAG_WEIGHTS, k=rng.choice((0, 0, 0, 0, 1, 1, 1, 2, 2, 3)))
        tags += [{"link_id": n, "tag": tag} for tag in set(chosen)]

    today = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
    daily: list[Row] = []
    hourly: list[Row] = []
    breakdowns: list[Row] = []
    for link in range(20, count + 1, 20):
        for d in range(1, 31):
            clicks = rng.randrange(1, 500)
            daily.append(
                {"link_id": link, "day": today - timedelta(days=d), "clicks": clicks,
                 "bot_clicks": clicks // 20, "uniques": clicks // 2}
            )  # fmt: skip
    for link in range(200, count + 1, 200):
        for h in range(1, 24 * 7 + 1):
            clicks = rng.randrange(0, 50)
            hourly.append(
                {"link_id": link, "hour": NOW - timedelta(hours=h), "clicks": clicks,
                 "bot_clicks": clicks // 20, "uniques": clicks // 2}
            )  # fmt: skip
    values = {"referrer": 20, "browser": 5, "os": 5, "device": 3, "country": 10, "bot": 2}
    for link in range(2_000, count + 1, 2_000):
        for d in range(1, 31):
            for dimension, many in values.items():
                for v in range(many):
                    breakdowns.append(
                        {"link_id": link, "dimension": dimension, "day": today - timedelta(days=d),
                         "value": f"{dimension}{v}", "clicks": rng.randrange(99)}
                    )  # fmt: skip
    rows: dict[str, list[Row]] = {
        "users": users,
        "api_keys": keys,
        "links": link_list,
        "link_tags": tags,
        "link_clicks_daily": daily,
        "link_clicks_hourly": hourly,
        "link_breakdowns_daily": breakdowns,
    }
    stats_link = 2_000 if count >= 2_000 else 200
    listed = link_list[stats_link - 1]["user_id"]
    # A live link's generated code, from the middle of the table.
    code = next(
        row["code"]
        for row in link_list[count // 2 :]
        if not row["is_alias"] and row["deleted_at"] is None
    )
    sizes = {name: len(table_rows) for name, table_rows in rows.items()}
    return rows, Filled(code, stats_link, listed, admin, sizes)


async def fill(db: Database, url: str, rows: dict[str, list[Row]]) -> None:
    """Insert the rows through the driver (fast), then ANALYZE. The columns a table's rows
    leave out get their defaults."""
    if db.is_sqlite:
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)) as conn:
            conn.execute("BEGIN")
            for name, table_rows in rows.items():
                columns = list(table_rows[0])
                marks = ", ".join("?" * len(columns))
                stamped = [
                    tuple(_stamp(v) if isinstance(v, datetime) else v for v in row.values())
                    for row in table_rows
                ]
                insert = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
                conn.executemany(insert, stamped)
            conn.execute("COMMIT")
            conn.execute("ANALYZE")
        return
    conn = await asyncpg.connect(url)
    try:
        for name, table_rows in rows.items():
            records = [tuple(row.values()) for row in table_rows]
            await conn.copy_records_to_table(name, records=records, columns=list(table_rows[0]))
        # As autovacuum would have: statistics, and the visibility map for index-only scans.
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


# Part 2: the queries ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Probe:
    """One statement as the service sends it: SQL and parameters as the driver gets them."""

    name: str
    index: str
    table: str
    sql: str
    params: Any


Call = Callable[[AsyncConnection], Awaitable[object]]


async def capture(db: Database, call: Call) -> list[tuple[str, Any]]:
    """The SELECTs `call` sends, in order."""
    seen: list[tuple[str, Any]] = []

    def listen(*args: Any) -> None:
        statement, parameters = args[2], args[3]
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", listen)
    try:
        async with db.read() as conn:
            await call(conn)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", listen)
    return seen


async def service_probes(db: Database, filled: Filled) -> list[Probe]:
    # A member's key, and the admin's: a key's id is its user's (kurz_rows).
    member = Principal(
        user_id=filled.user, role="member", scopes=MEMBER_SCOPES, name="key", key_id=filled.user
    )
    admin = Principal(
        user_id=filled.admin, role="admin", scopes=frozenset(SCOPES), name="admin",
        key_id=filled.admin,
    )  # fmt: skip
    days = stats.window(start=None, end=NOW, interval="day", now=NOW)
    hours = stats.window(start=None, end=NOW, interval="hour", now=NOW)
    link, code = filled.stats_link, filled.code

    def listing(principal: Principal, tag: str | None = None) -> Call:
        search = Search(tags=() if tag is None else (tag,))
        return lambda conn: queries.list_(
            conn=conn, principal=principal, limit=PAGE, cursor=None, base_url=BASE_URL,
            search=search,
        )  # fmt: skip

    def link_stats(span: stats.Window) -> Call:
        return lambda conn: stats.get_link_stats(
            conn=conn, link_id=link, code="x", span=span, top=10
        )

    # kurz.links.scheduled.retire_expired's choice of links to retire.
    due = (
        sa.select(links.c.id)
        .where(links.c.deleted_at.is_(None), links.c.expires_at < NOW - GRACE)
        .limit(1_000)
    )
    wanted: list[tuple[str, str, str, Call, int]] = [
        ("redirect: a live link by code", "uq_links_domain_id_code", "links",
         lambda conn: queries.resolve(conn=conn, key=code), 0),
        (f"a user's links, newest first ({PAGE})", "ix_links_user_id_id", "links",
         listing(member), 0),
        ("the tags of that page", "pk_link_tags", "link_tags", listing(member), 1),
        (f"every link tagged {RARE_TAG} (admin)", "ix_link_tags_tag_link_id", "link_tags",
         listing(admin, RARE_TAG), 0),
        (f"a user's links tagged {POPULAR_TAG}", "ix_link_tags_tag_link_id", "link_tags",
         listing(member, POPULAR_TAG), 0),
        ("a link's hourly series, 24 h", "pk_link_clicks_hourly", "link_clicks_hourly",
         link_stats(hours), 0),
        ("a link's daily series, 30 days", "pk_link_clicks_daily", "link_clicks_daily",
         link_stats(days), 0),
        ("a link's top values, 30 days", "pk_link_breakdowns_daily", "link_breakdowns_daily",
         link_stats(days), 1),
        ("a user's totals, 30 days", "pk_link_clicks_daily", "link_clicks_daily",
         lambda conn: stats.get_summary(conn=conn, principal=member, span=days), 0),
        ("the expiry purge: links to retire", "ix_links_expires_at", "links",
         lambda conn: conn.execute(due), 0),
    ]  # fmt: skip
    probes = []
    for name, index, on, call, nth in wanted:
        sql, params = (await capture(db, call))[nth]
        probes.append(Probe(name, index, on, sql, params))
    return probes


@dataclass(frozen=True, slots=True)
class Timed:
    ms: float
    plan: list[str]

    @property
    def key(self) -> str:
        return key_line(self.plan)


def key_line(plan: Sequence[str]) -> str:
    """A plan's access paths and sorts, once each, without costs or aliases; on PostgreSQL
    with the buffers the statement touched."""
    found: list[str] = []
    buffers = ""
    for line in plan:
        text = line.strip().removeprefix("->").strip()
        if text.startswith("Buffers:") and not buffers:
            pages = sum(int(n) for n in re.findall(r"(?:hit|read)=(\d+)", text))
            buffers = f"{pages:,} buffers"
        if "  (cost=" in text:  # a PostgreSQL plan node
            step = text.partition("  (cost=")[0]
            wanted = "Scan" in step or "Sort" in step
        else:  # an SQLite EXPLAIN QUERY PLAN step
            step = text
            wanted = step.startswith(("SEARCH", "SCAN", "USE TEMP"))
        # Subqueries and CTEs read back (anon_1, per_link) are not tables.
        if not wanted or _DERIVED.search(step):
            continue
        step = re.sub(r" on (\w+) \w+$", r" on \1", step)  # PostgreSQL's alias of a table
        if step not in found:
            found.append(step)
    return "; ".join(found + ([buffers] if buffers else []))


_DERIVED = re.compile(r"(Subquery Scan|CTE Scan|SCAN anon_|SCAN per_link|SCAN \(subquery)")


async def timed(db: Database, probe: Probe, *, runs: int, settings: Sequence[str] = ()) -> Timed:
    """The median of `runs` executions in one read transaction, and the plan."""
    async with db.read() as conn:
        if not db.is_sqlite:
            # As stats.custom_plans does: plans for the values, never a generic one.
            await conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
        for setting in settings:
            await conn.exec_driver_sql(setting)
        explain = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
        result = await conn.exec_driver_sql(explain + probe.sql, probe.params)
        plan = [str(row[-1]) for row in result]
        for _ in range(WARM_UP):
            (await conn.exec_driver_sql(probe.sql, probe.params)).fetchall()
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            (await conn.exec_driver_sql(probe.sql, probe.params)).fetchall()
            times.append(time.perf_counter() - started)
    return Timed(statistics.median(times) * 1e3, plan)


async def analyze(db: Database, name: str) -> None:
    async with db.write(READ_COMMITTED) as conn:
        await conn.exec_driver_sql(f"ANALYZE {name}")


def _hinted(sql: str, name: str, hint: str) -> str:
    """`sql` with an SQLite index hint on each reference to table `name`."""
    return re.sub(rf"\b(FROM|JOIN) {name}\b", rf"\1 {name} {hint}", sql)


@asynccontextmanager
async def without(db: Database, probe: Probe) -> AsyncIterator[tuple[Probe | None, str]]:
    """The probe with its index gone, and how: dropped, and made again afterwards.

    SQLite cannot drop the index of a UNIQUE or PRIMARY KEY constraint: a rowid table's
    is forbidden to the statement instead (NOT INDEXED), and a WITHOUT ROWID table's key
    is the table itself, so there is no "without" (None).
    """
    if db.is_sqlite:
        async with db.read() as conn:
            ddl = (
                await conn.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?",
                    (probe.index,),
                )
            ).scalar_one_or_none()
        if ddl is None:
            if metadata.tables[probe.table].kwargs.get("sqlite_with_rowid", True) is False:
                yield None, "the key is the table (WITHOUT ROWID)"
            else:
                hinted = _hinted(probe.sql, probe.table, "NOT INDEXED")
                yield (
                    Probe(probe.name, probe.index, probe.table, hinted, probe.params),
                    "NOT INDEXED",
                )
            return
        drop, restore = [f"DROP INDEX {probe.index}"], [ddl]
    else:
        async with db.read() as conn:
            constraint = (
                await conn.exec_driver_sql(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = $1",
                    (probe.index,),
                )
            ).scalar_one_or_none()
            indexdef = (
                await conn.exec_driver_sql(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = $1", (probe.index,)
                )
            ).scalar_one()
        if constraint is not None:
            drop = [f"ALTER TABLE {probe.table} DROP CONSTRAINT {probe.index}"]
            restore = [f"ALTER TABLE {probe.table} ADD CONSTRAINT {probe.index} {constraint}"]
        else:
            drop, restore = [f"DROP INDEX {probe.index}"], [indexdef]
    await ddl_then_analyze(db, drop, probe.table)
    try:
        yield probe, "dropped"
    finally:
        await ddl_then_analyze(db, restore, probe.table)


async def ddl_then_analyze(db: Database, statements: Sequence[str], name: str) -> None:
    async with db.write(READ_COMMITTED) as conn:
        for statement in statements:
            await conn.exec_driver_sql(statement)
    await analyze(db, name)


def _times(ratio: float) -> str:
    return f"{ratio:.1f}x" if ratio < 10 else f"{ratio:,.0f}x"


async def read_benefit(
    db: Database, probes: Sequence[Probe], *, runs: int, plans: bool
) -> list[list[object]]:
    rows: list[list[object]] = []
    for probe in probes:
        with_index = await timed(db, probe, runs=runs)
        async with without(db, probe) as (bare, how):
            lacking = None if bare is None else await timed(db, bare, runs=runs)
        if plans:
            print(f"\n## {probe.name}\n{probe.sql}\n-- with {probe.index}:")
            print("\n".join(with_index.plan))
            if lacking is not None:
                print(f"-- without ({how}):\n" + "\n".join(lacking.plan))
        rows.append(
            [
                probe.name,
                f"`{probe.index}`",
                with_index.key,
                with_index.ms,
                how if lacking is None else lacking.key,
                "n/a" if lacking is None else lacking.ms,
                "n/a" if lacking is None else _times(lacking.ms / with_index.ms),
            ]
        )
    return rows


# Part 3: when an index is not used, or hurts -----------------------------------------


async def probe_of(db: Database, name: str, query: sa.Executable) -> Probe:
    sql, params = (await capture(db, lambda conn: conn.execute(query)))[0]
    return Probe(name, "", "links", sql, params)


async def low_selectivity(db: Database, *, runs: int, plans: bool) -> list[list[object]]:
    """Indexes where most rows match: the planner's choice, and the index forced."""
    forced = (
        ["SET LOCAL enable_seqscan = off", "SET LOCAL enable_bitmapscan = off"]
        if not db.is_sqlite
        else []
    )
    totals = sa.select(sa.func.count(), sa.func.sum(links.c.visits))
    # A boolean: one value's entries are in the table's order. A range of users: their
    # entries are all over the table.
    cases = [
        ("is_alias IS true", "ix_links_is_alias", "is_alias", links.c.is_alias.is_(True)),
        ("is_alias IS false", "ix_links_is_alias", "is_alias", links.c.is_alias.is_(False)),
        ("user_id <= 950", "ix_links_user_id", "user_id", links.c.user_id <= 950),
    ]
    rows: list[list[object]] = []
    async with db.read() as conn:
        total = (await conn.execute(sa.select(sa.func.count()).select_from(links))).scalar_one()
    for name, index, column, where in cases:
        probe = await probe_of(db, name, totals.where(where))
        async with db.read() as conn:
            matched = (await conn.execute(sa.select(sa.func.count()).where(where))).scalar_one()
        bare = await timed(db, probe, runs=runs)
        await ddl_then_analyze(db, [f"CREATE INDEX {index} ON links ({column})"], "links")
        chosen = await timed(db, probe, runs=runs)
        hinted = _hinted(probe.sql, "links", f"INDEXED BY {index}") if db.is_sqlite else probe.sql
        forcing = Probe(probe.name, index, "links", hinted, probe.params)
        pushed = await timed(db, forcing, runs=runs, settings=forced)
        await ddl_then_analyze(db, [f"DROP INDEX {index}"], "links")
        if plans:
            for label, result in (("no index", bare), ("planner", chosen), ("forced", pushed)):
                print(f"\n## {probe.name}, {label}\n" + "\n".join(result.plan))
        rows.append(
            [f"`{name}` ({matched / total:.0%} of rows)", f"`{index}`", bare.key, bare.ms,
             chosen.key, chosen.ms, pushed.key, pushed.ms]
        )  # fmt: skip
    return rows


async def function_on_column(
    db: Database, filled: Filled, *, runs: int, plans: bool
) -> list[list[object]]:
    """A case-insensitive look-up of a code: lower(code) cannot use the index on code."""
    index = "ix_links_lower_code"
    columns = (links.c.id, links.c.url)
    # kurz's redirect asks for a code on a domain (0: the default one), as the unique
    # index (domain_id, code) is laid out (migration 0012).
    on_default = links.c.domain_id == 0
    plain = sa.select(*columns).where(
        on_default, links.c.code == filled.code, links.c.deleted_at.is_(None)
    )
    lowered = sa.select(*columns).where(
        on_default, sa.func.lower(links.c.code) == filled.code.lower(), links.c.deleted_at.is_(None)
    )
    unique = "uq_links_domain_id_code"
    cases = [
        ("code = :code", unique, await probe_of(db, "plain", plain)),
        ("lower(code) = :code", unique, await probe_of(db, "lower", lowered)),
    ]
    results = [
        (sql, index_name, await timed(db, probe, runs=runs)) for sql, index_name, probe in cases
    ]
    await ddl_then_analyze(db, [f"CREATE INDEX {index} ON links (domain_id, lower(code))"], "links")
    lower = await timed(db, cases[1][2], runs=runs)
    await ddl_then_analyze(db, [f"DROP INDEX {index}"], "links")
    results.append(("lower(code) = :code", f"+ `{index}` on (domain_id, lower(code))", lower))
    if plans:
        for sql, index_name, result in results:
            print(f"\n## {sql}, {index_name}\n" + "\n".join(result.plan))
    return [
        [f"`{sql}`", name if name.startswith("+") else f"`{name}` only", result.key, result.ms]
        for sql, name, result in results
    ]


# The run ------------------------------------------------------------------------------


@dataclass(slots=True)
class Results:
    links: list[list[object]]
    clicks: list[list[object]]
    reads: dict[str, list[list[object]]]
    selectivity: list[list[object]]
    function: list[list[object]]
    waste: list[list[object]]
    filled: Filled | None = None


def _mb(n: int) -> float:
    return n / 2**20


async def writes(backend: str, target: str, args: argparse.Namespace, results: Results) -> None:
    rng = random.Random(1)
    name = NAMES[backend]
    written_links = link_rows(args.rows, rng)
    written_clicks = click_rows(args.rows, rng)
    per_click: dict[int, Written] = {}
    for shape, rows, out in (
        (LINKS, written_links, results.links),
        (CLICKS, written_clicks, results.clicks),
    ):
        for count in INDEX_COUNTS:
            w = await write_cost(backend, target, shape, rows, count, rounds=args.rounds)
            if shape is CLICKS:
                per_click[count] = w
            out.append(
                [name, count, round(w.per_second), w.us_per_row,
                 _mb(w.table_bytes), _mb(w.index_bytes)]
            )  # fmt: skip
            print(f"{name} {shape.name} {count} indexes: {w.per_second:,.0f} rows/s", flush=True)
    batches = batch_rows(written_clicks, rng)
    w = await write_cost(backend, target, BATCHES, batches, 0, rounds=args.rounds, per_tx=1)
    clicks_per_second = args.rows / w.seconds
    results.clicks.append(
        [f"{name}, a row per batch (kurz)", "n/a", round(clicks_per_second),
         w.seconds / args.rows * 1e6, _mb(w.table_bytes), _mb(w.index_bytes)]
    )  # fmt: skip
    none, one, six = per_click[0], per_click[1], per_click[6]
    results.waste.append(
        [name, none.us_per_row, one.us_per_row, six.us_per_row,
         _times(six.seconds / one.seconds), _mb(six.index_bytes - one.index_bytes),
         w.seconds / args.rows * 1e6]
    )  # fmt: skip


async def reads(backend: str, url: str, args: argparse.Namespace, results: Results) -> None:
    rows, filled = kurz_rows(args.links, random.Random(2))
    results.filled = filled
    db = Database.from_url(url)
    try:
        await upgrade(db)
        started = time.perf_counter()
        await fill(db, url, rows)
        print(f"{NAMES[backend]}: filled in {time.perf_counter() - started:.1f} s", flush=True)
        probes = await service_probes(db, filled)
        results.reads[backend] = await read_benefit(db, probes, runs=args.runs, plans=args.plans)
        for row in await low_selectivity(db, runs=args.runs, plans=args.plans):
            results.selectivity.append([NAMES[backend], *row])
        for row in await function_on_column(db, filled, runs=args.runs, plans=args.plans):
            results.function.append([NAMES[backend], *row])
    finally:
        await db.engine.dispose()


async def run(args: argparse.Namespace) -> Results:
    results = Results([], [], {}, [], [], [])
    for backend in args.backends:
        if backend == "sqlite":
            with sqlite_database("indexing-writes") as url:
                await writes(backend, url.removeprefix("sqlite:///"), args, results)
            with sqlite_database("indexing-reads") as url:
                await reads(backend, url, args, results)
        else:
            async with postgres_database("indexing") as url:
                await writes(backend, url, args, results)
                await reads(backend, url, args, results)
    return results


def _index_list(shape: Shape) -> list[str]:
    return [
        f"{n}. `{index.columns}`{' unique' if index.unique else ''}"
        + (f" where `{index.where}`" if index.where else "")
        + f": {index.serves}"
        for n, index in enumerate(shape.indexes, 1)
    ]


def report(results: Results, args: argparse.Namespace, postgres: str | None) -> list[str]:
    argv = [arg for arg in args.argv if arg != "--write"]
    lines = header(command_line("lab-indexing", "bench.lab.indexing", argv), postgres=postgres)
    write_head = ["database", "secondary indexes", "rows/s", "µs/row", "table MB", "indexes MB"]
    lines += [
        "### Part 1: what indexes cost a write",
        "",
        f"{args.rows:,} rows inserted in transactions of {BATCH:,}, median of "
        f"{args.rounds} round(s); the size after the last. Indexes MB is the secondary "
        "indexes' (PostgreSQL's primary key index is left out; SQLite's is the table).",
        "",
        f"A links-shaped table (`{LINKS.name}`), indexes added in this order:",
        "",
        *_index_list(LINKS),
        "",
        *table(write_head, results.links),
        "",
        f"A row per click (`{CLICKS.name}`), indexes added in this order:",
        "",
        *_index_list(CLICKS),
        "",
        "The last row of each database: the same clicks as kurz's click log keeps them, "
        "one row per batch of 1,000 (its id and the events as JSON), a transaction each.",
        "",
        *table(write_head, results.clicks),
        "",
    ]
    filled = results.filled
    assert filled is not None
    sizes = ", ".join(f"{name} {n:,}" for name, n in filled.rows.items())
    lines += [
        "### Part 2: what each index buys its query",
        "",
        f"kurz's schema (its migrations), rows: {sizes}. Each statement is captured from "
        f"the service function that sends it and timed as sent: median of {args.runs} runs "
        "in one read transaction, in ms. The plan's key line: access paths and sorts "
        "(PostgreSQL: EXPLAIN (ANALYZE, BUFFERS), with the buffers the statement touched; "
        "SQLite: EXPLAIN QUERY PLAN). Without: the index dropped and the table analysed.",
        "",
    ]
    read_head = ["query", "index", "plan with it", "ms", "plan without", "ms", "slower"]
    for backend, rows in results.reads.items():
        lines += [f"{NAMES[backend]}:", "", *table(read_head, rows), ""]
    lines += [
        "### Part 3: when an index is not used, or hurts",
        "",
        "(i) Low selectivity: `SELECT count(*), sum(visits) FROM links WHERE ...`, with no "
        "index, with a plain index on the column and the planner's choice, and with that "
        "index forced (PostgreSQL: `enable_seqscan` and `enable_bitmapscan` off; SQLite: "
        "`INDEXED BY`). ms, median.",
        "",
        *table(
            [
                "database",
                "where",
                "index",
                "no index",
                "ms",
                "planner's choice",
                "ms",
                "index forced",
                "ms",
            ],
            results.selectivity,
        ),
        "",
        "(ii) A function on the column: a case-insensitive look-up of a code.",
        "",
        *table(["database", "where", "indexes", "plan", "ms"], results.function),
        "",
        "(iii) The write-heavy click table, from part 1: µs per click inserted, with no "
        "secondary index, with `(link_id, at)` (a link's clicks over time), and with the "
        "five more that no query of kurz makes (kurz's reads use the rollups).",
        "",
        *table(
            ["database", "none", "1", "6", "6 / 1", "MB of the five", "row per batch"],
            results.waste,
        ),
        "",
    ]
    return lines


def write_figure(results: Results, args: argparse.Namespace) -> Any:
    """Part 1 drawn: µs per row inserted and MB of secondary indexes, by their number."""
    fig, (cost, size) = figures.grid(1, 2, width=7.5, height=3.4)
    for n, (shape, rows) in enumerate((("links", results.links), ("clicks", results.clicks))):
        for m, backend in enumerate(args.backends):
            name = NAMES[backend]
            mine = [r for r in rows if r[0] == name]
            xs = [int(str(r[1])) for r in mine]
            color = figures.COLORS[2 * m + n]
            style = "-" if shape == "links" else "--"
            label = f"{name}, {shape}"
            cost.plot(xs, [r[3] for r in mine], style, marker="o", color=color, label=label)
            size.plot(xs, [r[5] for r in mine], style, marker="o", color=color, label=label)
            batch = [r for r in rows if r[0] == f"{name}, a row per batch (kurz)"]
            if batch:
                cost.axhline(float(str(batch[0][3])), color=color, linestyle=":", linewidth=1)
    cost.set_title("µs per row inserted (dotted: kurz's row per batch)", loc="left", fontsize=9)
    size.set_title("MB of secondary indexes", loc="left", fontsize=9)
    for ax in (cost, size):
        ax.set_xticks(list(INDEX_COUNTS))
        ax.set_ylim(bottom=0)
        ax.set_xlabel("secondary indexes")
    cost.set_ylabel("µs per row (median, loaded machine)")
    size.set_ylabel("MB")
    cost.legend(fontsize=7)
    fig.suptitle(
        f"What indexes cost a write: {args.rows:,} rows, transactions of {BATCH:,}",
        x=0.01, ha="left", fontsize=10,
    )  # fmt: skip
    return fig


def read_figure(results: Results, args: argparse.Namespace) -> Any:
    """Part 2 drawn: each query's ms with its index and with it dropped, log scale."""
    backends = [b for b in args.backends if b in results.reads]
    fig, axes = figures.grid(1, len(backends), width=7.5, height=3.8)
    axes = list(axes) if len(backends) > 1 else [axes]
    for col, (ax, backend) in enumerate(zip(axes, backends, strict=True)):
        rows = results.reads[backend][::-1]
        ys = list(range(len(rows)))
        ax.barh([y + 0.2 for y in ys], [float(str(r[3])) for r in rows], height=0.4,
                label="with its index")  # fmt: skip
        ax.barh(
            [y - 0.2 for y in ys],
            [float(str(r[5])) if r[5] != "n/a" else 0.0 for r in rows],
            height=0.4, label="index dropped",
        )  # fmt: skip
        ax.set_xscale("log")
        ax.set_yticks(ys, [str(r[0]) for r in rows] if col == 0 else [""] * len(rows), fontsize=7)
        ax.set_title(NAMES[backend], loc="left", fontsize=9)
        ax.set_xlabel("ms, median (log)")
    axes[-1].legend(fontsize=7, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2)
    fig.suptitle(
        f"What an index buys its query ({args.links:,} links)",
        x=0.01, ha="left", fontsize=10,
    )  # fmt: skip
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lab.indexing", description=__doc__)
    parser.add_argument("--rows", type=int, help="rows per table in part 1 (100,000)")
    parser.add_argument("--links", type=int, help="links in part 2 (200,000)")
    parser.add_argument("--runs", type=int, help="timed runs per query (20)")
    parser.add_argument("--rounds", type=int, help="rounds per insert (3)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--plans", action="store_true", help="print the full plans")
    parser.add_argument("--write", action="store_true", help="fill docs/lab/indexing.md")
    args = parser.parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    quick = args.quick
    args.rows = args.rows or (10_000 if quick else 100_000)
    args.links = args.links or (20_000 if quick else 200_000)
    args.runs = args.runs or (5 if quick else 20)
    args.rounds = args.rounds or (1 if quick else 3)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if unknown := set(args.backends) - set(BACKENDS):
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    return asyncio.run(_main(args))


async def _main(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    postgres = await postgres_version() if "postgresql" in args.backends else None
    results = await run(args)
    publish("indexing.md", report(results, args, postgres), write=args.write)
    figures.save(write_figure(results, args), "lab/figures/indexing-writes.svg")
    figures.save(write_figure(results, args), "designs/figures/indexing-writes.svg")
    figures.save(read_figure(results, args), "lab/figures/indexing-reads.svg")
    figures.save(read_figure(results, args), "designs/figures/indexing-reads.svg")
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
