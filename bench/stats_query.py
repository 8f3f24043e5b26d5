"""The stats API's queries on a link with 10 million clicks over 90 days, SQLite and PostgreSQL.

    python -m bench.stats_query [--runs 50] [--quiet-links 1000] [--hot-clicks 10000000]
                                [--no-record]

One database per backend, made for the run: a SQLite file in a temporary directory and
a scratch database on the PostgreSQL server KURZ_BENCH_PG names (dropped afterwards),
both migrated. bench/stats_seed.py writes the rollups of 90 days into them: the hot
link's 10 million clicks (2,160 hourly rows, 90 daily rows, ~444 breakdown rows a day:
~300 referrers, 25 browsers, 15 OS, 4 devices, 80 countries, 20 bots) and those of
`--quiet-links` others, owned by one user. PostgreSQL is then vacuumed and analysed, as
autovacuum would have done; SQLite is left as an embedded kurz leaves it (no ANALYZE).

Timed, each `--runs` times after a warm-up, in a read transaction of its own as the API
opens one: the link's stats as GET /api/v1/links/{code}/stats computes them (look-up of
the code, series, top values) with interval=day over the 90 days and interval=hour over
the last 31; the top values alone, in four ways (the one stats.py keeps: a UNION ALL of
one statement per dimension; those statements one after another; one statement grouped
by dimension and value, ranked in Python; ranked in SQL by a window function), and
with PostgreSQL free to reuse a generic plan (what stats.custom_plans prevents); the
user's totals across their links (also with generic plans); and the link's stats through
the ASGI app (httpx.ASGITransport: routing, auth, validation, JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import metadata
from pathlib import Path
from typing import Any
from unittest import mock

import asyncpg
import httpx
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection

from bench import harness
from bench.harness import BenchError, cpu_model, source_state
from bench.stats_seed import END, HOT_CODE, START, Generator, check, insert_day, make_links
from kurz.analytics import stats
from kurz.analytics.models import DIMENSIONS, TopValue, TopValues
from kurz.app import create_app
from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate, Principal, scopes_for
from kurz.bootstrap import build
from kurz.config import Settings
from kurz.db import READ_COMMITTED, Database, upgrade
from kurz.db.tables import link_breakdowns_daily
from kurz.links import queries

PG_ADMIN = os.environ.get("KURZ_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
GOAL_MS = 50.0
WARM_UP = 5
TOP = 10
LINK_STATS = ("link stats", "HTTP")
GENERIC = "PostgreSQL free to reuse a generic plan"
DAY_SPAN = stats.Window(START, END, "day")
HOUR_SPAN = stats.Window(END - timedelta(days=31), END, "hour")


# The ways of getting the top values that stats.py does not take, for comparison.
def _total() -> sa.ColumnElement[Any]:
    return sa.cast(sa.func.sum(link_breakdowns_daily.c.clicks), sa.BigInteger)


def _in_days(link_id: int, days: stats.Window) -> list[sa.ColumnElement[bool]]:
    b = link_breakdowns_daily
    return [b.c.link_id == link_id, b.c.day >= days.start, b.c.day < days.end]


async def top_grouped(
    *, conn: AsyncConnection, link_id: int, days: stats.Window, top: int
) -> TopValues:
    b = link_breakdowns_daily
    rows = await conn.execute(
        sa.select(b.c.dimension, b.c.value, _total())
        .where(*_in_days(link_id, days), b.c.dimension.in_(DIMENSIONS))
        .group_by(b.c.dimension, b.c.value)
    )
    ranked: dict[str, list[tuple[int, str]]] = {dimension: [] for dimension in DIMENSIONS}
    for dimension, value, n in rows:
        ranked[dimension].append((-n, value))
    best = {
        dimension: [TopValue(value=value, clicks=-n) for n, value in heapq.nsmallest(top, pairs)]
        for dimension, pairs in ranked.items()
    }
    return stats.top_values_of(days, best)


async def top_ranked_in_sql(
    *, conn: AsyncConnection, link_id: int, days: stats.Window, top: int
) -> TopValues:
    b = link_breakdowns_daily
    total = _total()
    rank = sa.func.row_number().over(
        partition_by=b.c.dimension, order_by=(total.desc(), stats.bytewise(conn, b.c.value))
    )
    ranked = (
        sa.select(b.c.dimension, b.c.value, total.label("clicks"), rank.label("rank"))
        .where(*_in_days(link_id, days), b.c.dimension.in_(DIMENSIONS))
        .group_by(b.c.dimension, b.c.value)
        .subquery()
    )
    rows = await conn.execute(
        sa.select(ranked.c.dimension, ranked.c.value, ranked.c.clicks)
        .where(ranked.c.rank <= top)
        .order_by(ranked.c.dimension, ranked.c.rank)
    )
    best: dict[str, list[TopValue]] = {dimension: [] for dimension in DIMENSIONS}
    for dimension, value, n in rows:
        best[dimension].append(TopValue(value=value, clicks=n))
    return stats.top_values_of(days, best)


async def top_one_by_one(
    *, conn: AsyncConnection, link_id: int, days: stats.Window, top: int
) -> TopValues:
    b = link_breakdowns_daily
    best: dict[str, list[TopValue]] = {}
    for dimension in DIMENSIONS:
        total = _total()
        rows = await conn.execute(
            sa.select(b.c.value, total)
            .where(*_in_days(link_id, days), b.c.dimension == dimension)
            .group_by(b.c.value)
            .order_by(total.desc(), stats.bytewise(conn, b.c.value))
            .limit(top)
        )
        best[dimension] = [TopValue(value=value, clicks=n) for value, n in rows]
    return stats.top_values_of(days, best)


TopValuesQuery = Callable[..., Awaitable[TopValues]]
TOP_VARIANTS: dict[str, TopValuesQuery] = {
    "a UNION ALL of one statement per dimension (kept)": stats.top_values,
    "the 6 per-dimension statements one after another": top_one_by_one,
    "one statement grouped by dimension and value, ranked in Python": top_grouped,
    "one statement ranked in SQL by row_number()": top_ranked_in_sql,
}


@dataclass(frozen=True, slots=True)
class Timing:
    # Seconds per run, wall clock.
    walls: list[float]
    # CPU seconds per run: this process, and the PostgreSQL backends serving the database.
    cpu: float

    def median_p95_ms(self) -> tuple[float, float]:
        p95 = statistics.quantiles(self.walls, n=20)[18]
        return statistics.median(self.walls) * 1e3, p95 * 1e3

    def __str__(self) -> str:
        median, p95 = self.median_p95_ms()
        return f"{median:7.2f} / {p95:7.2f} ms, CPU {self.cpu * 1e3:6.2f} ms"


class CpuClock:
    """CPU time spent so far by this process and (Linux, a local server) by the
    PostgreSQL backends of one database: unlike wall time, it does not grow when a
    neighbour on the shared host takes the CPU away."""

    def __init__(self, admin: asyncpg.Connection, database: str | None) -> None:
        self.admin = admin
        self.database = database

    async def read(self) -> float:
        spent = time.process_time()
        if self.database is None:
            return spent
        rows = await self.admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1", self.database
        )
        return spent + _on_cpu_seconds([row["pid"] for row in rows])


def _on_cpu_seconds(pids: list[int]) -> float:
    spent = 0
    for pid in pids:
        try:
            spent += int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
        except OSError:
            continue  # not on this host, or it ended meanwhile
    return spent / 1e9


@dataclass
class Backend:
    name: str
    url: str
    cpu: CpuClock
    version: str = ""
    seed_seconds: float = 0.0
    rows: int = 0
    samples: dict[str, Timing] = field(default_factory=dict)
    plans: list[str] = field(default_factory=list)


def generic_plans_allowed() -> AbstractContextManager[object]:
    """Leave out stats.custom_plans, to see what it saves."""

    async def nothing(conn: AsyncConnection) -> None:
        return None

    return mock.patch.object(stats, "custom_plans", nothing)


async def timed(call: Callable[[], Awaitable[object]], runs: int, cpu: CpuClock) -> Timing:
    for _ in range(WARM_UP):
        await call()
    walls = []
    cpu_before = await cpu.read()
    for _ in range(runs):
        start = time.perf_counter()
        await call()
        walls.append(time.perf_counter() - start)
    return Timing(walls, (await cpu.read() - cpu_before) / runs)


async def seed(db: Database, backend: Backend, quiet: int, hot_clicks: int) -> Principal:
    await upgrade(db)
    started = time.perf_counter()
    principal, hot_id, quiet_ids = await make_links(db, quiet)
    for day in Generator(hot_id, hot_clicks, quiet_ids, seed=7).days():
        await insert_day(db, day)
        backend.rows += day.rows()
    backend.seed_seconds = time.perf_counter() - started
    await check(db, hot_id, hot_clicks)
    return principal


async def vacuum(url: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        for table in ("links", "link_clicks_hourly", "link_clicks_daily", "link_breakdowns_daily"):
            await conn.execute(f"VACUUM ANALYZE {table}")
    finally:
        await conn.close()


async def explain(db: Database, call: Callable[[AsyncConnection], Awaitable[object]]) -> list[str]:
    """The plans of the statements `call` runs, as the database chose them for its values."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        async with db.read() as conn:
            await call(conn)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) "
    plans = []
    async with db.read() as conn:
        for statement, parameters in sent:
            result = await conn.exec_driver_sql(prefix + statement, parameters)
            lines = [str(row[-1]).strip() for row in result]
            if not db.is_sqlite:
                lines = _plan_nodes(lines)
            # Each line once: the per-dimension parts repeat theirs.
            plans.append("; ".join(dict.fromkeys(line for line in lines if line)))
    return plans


def _plan_nodes(lines: list[str]) -> list[str]:
    """A PostgreSQL plan's nodes with their row counts, the first index condition, the time."""
    nodes = []
    conditions = [line for line in lines if line.startswith("Index Cond")][:1]
    for line in lines:
        if line == lines[0] or line.startswith("->"):
            nodes.append(line.removeprefix("->").strip())
        elif line.startswith("Execution Time"):
            nodes += [*conditions, line]
    return nodes


async def measure(backend: Backend, opts: argparse.Namespace) -> None:
    db = Database.from_url(backend.url)
    try:
        principal = await seed(db, backend, opts.quiet_links, opts.hot_clicks)
        if not db.is_sqlite:
            await vacuum(backend.url)
        async with db.read() as conn:
            hot_id = await queries.get_id(conn=conn, code=HOT_CODE, principal=principal)
            backend.version = str(
                (
                    await conn.exec_driver_sql(
                        "SELECT sqlite_version()" if db.is_sqlite else "SHOW server_version"
                    )
                ).scalar_one()
            )

        def link_stats(span: stats.Window) -> Callable[[], Awaitable[object]]:
            async def run() -> None:
                async with db.read() as conn:
                    link_id = await queries.get_id(conn=conn, code=HOT_CODE, principal=principal)
                    await stats.get_link_stats(
                        conn=conn, link_id=link_id, code=HOT_CODE, span=span, top=TOP
                    )

            return run

        def top_values(
            query: TopValuesQuery, custom: bool = True
        ) -> Callable[[], Awaitable[object]]:
            async def run() -> None:
                async with db.read() as conn:
                    if custom:
                        await stats.custom_plans(conn)
                    await query(conn=conn, link_id=hot_id, days=DAY_SPAN, top=TOP)

            return run

        def summary(custom: bool = True) -> Callable[[], Awaitable[object]]:
            async def run() -> None:
                async with db.read() as conn:
                    with nullcontext() if custom else generic_plans_allowed():
                        await stats.get_summary(conn=conn, principal=principal, span=DAY_SPAN)

            return run

        links = f"{opts.quiet_links + 1:,}"
        cases: dict[str, Callable[[], Awaitable[object]]] = {
            "link stats, interval=day, 90 days (90 points)": link_stats(DAY_SPAN),
            "link stats, interval=hour, last 31 days (744 points)": link_stats(HOUR_SPAN),
        }
        cases |= {f"top values: {name}": top_values(q) for name, q in TOP_VARIANTS.items()}
        if not db.is_sqlite:
            cases[f"top values (kept), {GENERIC}"] = top_values(stats.top_values, custom=False)
        cases[f"totals across the user's {links} links, 90 days"] = summary()
        if not db.is_sqlite:
            cases[f"totals across {links} links, {GENERIC}"] = summary(custom=False)
        for name, call in cases.items():
            backend.samples[name] = await timed(call, opts.runs, backend.cpu)
            print(f"{backend.name:10} {name:75} {backend.samples[name]}", flush=True)

        # Different top values would make the comparison meaningless.
        async with db.read() as conn:
            answers = {
                name: await q(conn=conn, link_id=hot_id, days=DAY_SPAN, top=TOP)
                for name, q in TOP_VARIANTS.items()
            }
        if len({answer.model_dump_json() for answer in answers.values()}) != 1:
            raise BenchError(f"{backend.name}: the top-values variants disagree")
        backend.plans = await explain(
            db, lambda conn: stats.top_values(conn=conn, link_id=hot_id, days=DAY_SPAN, top=TOP)
        )
    finally:
        await db.dispose()
    await through_http(backend, opts)


async def through_http(backend: Backend, opts: argparse.Namespace) -> None:
    settings = Settings.model_validate(
        {
            "database_url": backend.url,
            "embedded_worker": False,
            "analytics": False,
            "ratelimit_api": "off",
            "ratelimit_redirect": "off",
            "ratelimit_auth_fail": "off",
            "grpc_port": 0,
        }
    )
    app = create_app(build(settings))
    async with app.router.lifespan_context(app):
        async with app.state.kurz.db.write(READ_COMMITTED) as conn:
            key = await key_queries.create(
                conn=conn,
                key_in=ApiKeyCreate(name="bench-http", scopes=scopes_for(admin=True)),
                now=START,
            )
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {key.secret}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=headers
        ) as client:
            requests = {
                "HTTP: GET /api/v1/links/hot/stats, interval=day, 90 days": (
                    f"/api/v1/links/{HOT_CODE}/stats",
                    {"from": START.isoformat(), "to": END.isoformat()},
                ),
                "HTTP: GET /api/v1/links/hot/stats, interval=hour, last 31 days": (
                    f"/api/v1/links/{HOT_CODE}/stats",
                    {
                        "interval": "hour",
                        "from": HOUR_SPAN.start.isoformat(),
                        "to": END.isoformat(),
                    },
                ),
            }
            for name, (path, params) in requests.items():

                async def get(path: str = path, params: dict[str, str] = params) -> None:
                    response = await client.get(path, params=params)
                    if response.status_code != 200:
                        raise BenchError(f"{path}: {response.status_code} {response.text[:300]}")

                backend.samples[name] = await timed(get, opts.runs, backend.cpu)
                print(f"{backend.name:10} {name:75} {backend.samples[name]}", flush=True)


def _figures(samples: Sequence[float]) -> str:
    median, p95 = _median_p95(samples)
    return f"{median:7.2f} / {p95:7.2f} ms"


def _median_p95(samples: Sequence[float]) -> tuple[float, float]:
    return statistics.median(samples) * 1e3, statistics.quantiles(samples, n=20)[18] * 1e3


async def run(opts: argparse.Namespace) -> list[Backend]:
    name = f"kurz_bench_stats_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        with tempfile.TemporaryDirectory(prefix="kurz-bench-stats-") as tmp:
            backends = [
                Backend("SQLite", f"sqlite:///{tmp}/kurz.db", CpuClock(admin, None)),
                Backend(
                    "PostgreSQL", f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}", CpuClock(admin, name)
                ),
            ]
            for backend in backends:
                await measure(backend, opts)
        return backends
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


def report(
    backends: list[Backend], opts: argparse.Namespace, loads: tuple[float, float]
) -> list[str]:
    sqlite, postgres = backends
    drivers = ", ".join(
        f"{p} {metadata.version(p)}" for p in ("SQLAlchemy", "aiosqlite", "asyncpg")
    )
    lines = [
        f"- machine: {os.cpu_count()} CPUs, {cpu_model()}, Python {sys.version.split()[0]}; "
        f"{source_state()}",
        f"- SQLite {sqlite.version}, PostgreSQL {postgres.version.split()[0]}; {drivers}",
        f"- data: one link with {opts.hot_clicks:,} clicks by people over 90 days (plus ~3% "
        "bots), ~444 breakdown rows a day (~300 referrers, a Zipf-like spread, the tail "
        f"changing daily; 25 browsers, 15 OS, 4 devices, 80 countries, 20 bots), and "
        f"{opts.quiet_links:,} quieter links (300,000 / rank clicks each); "
        f"{sqlite.rows:,} rollup rows, inserted day by day in "
        f"{sqlite.seed_seconds:.0f} s (SQLite) and {postgres.seed_seconds:.0f} s (PostgreSQL, "
        "COPY; then VACUUM ANALYZE)",
        f"- {opts.runs} runs per case after {WARM_UP} warm-up runs, each in a read transaction "
        "of its own; wall time median / p95, and CPU per run (this process, and the "
        "PostgreSQL backends of the database); top values with top=10 over the 90 days",
        "",
        "| query | SQLite median / p95 | CPU | PostgreSQL median / p95 | CPU |",
        "|---|---:|---:|---:|---:|",
    ]
    for case in dict.fromkeys([*postgres.samples, *sqlite.samples]):
        cells = []
        for backend in backends:
            timing = backend.samples.get(case)
            if timing is None:
                cells += ["-", "-"]
                continue
            median, p95 = timing.median_p95_ms()
            cells += [f"{median:.1f} / {p95:.1f} ms", f"{timing.cpu * 1e3:.1f} ms"]
        lines.append(f"| {case} | {' | '.join(cells)} |")
    timings = [
        b.samples[case] for b in backends for case in b.samples if case.startswith(LINK_STATS)
    ]
    median = max(t.median_p95_ms()[0] for t in timings)
    p95 = max(t.median_p95_ms()[1] for t in timings)
    met = "met" if p95 < GOAL_MS else "met by the median only" if median < GOAL_MS else "NOT met"
    lines += [
        "",
        f"- goal: link stats under {GOAL_MS:g} ms, direct and through HTTP: the slowest "
        f"median was {median:.1f} ms, the slowest p95 {p95:.1f} ms: {met}",
        f"- load average (1 min) before / after the run: {loads[0]:.2f} / {loads[1]:.2f} on "
        f"{os.cpu_count()} CPUs (the host is shared: other work there stretches wall times)",
    ]
    for backend in backends:
        for plan in backend.plans:
            lines.append(f"- {backend.name} plan of the top values: `{plan}`")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(
        prog="python -m bench.stats_query",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=50, help="timed runs per case")
    parser.add_argument("--quiet-links", type=int, default=1_000, help="links besides the hot one")
    parser.add_argument("--hot-clicks", type=int, default=10_000_000, help="the hot link's clicks")
    parser.add_argument("--no-record", action="store_true", help="do not append to the docs")
    opts = parser.parse_args(argv)
    if opts.runs < 2 or opts.quiet_links < 0 or opts.hot_clicks < 1:
        parser.error("--runs >= 2, --quiet-links >= 0, --hot-clicks >= 1")
    load_before = os.getloadavg()[0]
    try:
        backends = asyncio.run(run(opts))
    except (BenchError, OSError, asyncpg.PostgresError) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    harness.publish(
        "Stats queries on a link with 10M clicks",
        report(backends, opts, (load_before, os.getloadavg()[0])),
        target="bench-stats", module="bench.stats_query", argv=argv, keep=not opts.no_record,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
