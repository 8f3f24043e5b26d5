"""Exporting 100,000 links with their statistics: the rate, and that memory stays flat
whatever the number of links, through `kurz export` and GET /api/v1/export, SQLite and
PostgreSQL.

    python -m bench.export [--links 100000] [--small 10000] [--backends sqlite,postgresql]
                           [--no-record]

Each backend gets a fresh migrated database (a SQLite file; a PostgreSQL database made
on KURZ_BENCH_PG and dropped after), seeded in two steps: `--small` links, measured,
then the rest up to `--links`, measured again, so that the two sizes differ in nothing
but the number of links. The links belong to 10 users; 30% carry one or two tags, 10%
a title. Their statistics are made up the same way every run: a link has clicks on 1
to 7 days (4 on average) in the last 90, two hours of each, and five breakdown rows a
day (country, referrer, browser, os, device), so about 32 rollup rows a link; one link
in 20,000 is busy, with clicks every hour of 365 days (8,760 hourly rows, a chunk's
worth and more, about 7,000 breakdown rows).

Each size is exported in JSON Lines (every link, tombstones and statistics, as an
admin's export is) two ways, each in a process of its own on CPU 0:

- CLI: `kurz export --output FILE`, timed from start to exit (a Python start
  included); its peak memory is the process's ru_maxrss (os.wait4);
- API: a fresh `kurz serve` (analytics off), one GET /api/v1/export with an admin
  key, read to the end by this process on CPU 1 and timed from request to last byte;
  the server's peak memory is its VmHWM (/proc/PID/status; the same figure as
  ru_maxrss), against its VmRSS before the request.

Peak resident memory of the whole process, so the interpreter and kurz's modules
count too; the figure that matters is how it moves between the two sizes. tracemalloc
is not used: it would slow the run it measures several times over. Every export is
checked: its `end` line counts the links and rows seeded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bench import harness
from bench.harness import BenchError, Processes, cpu_model, free_port, on_cpu, pinned, source_state
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import users

START = datetime(2026, 1, 1, tzinfo=UTC)
BASE_URL = "https://kurz.test"
USERS = 10
DAYS = 90
BUSY_EVERY = 20_000
_DIMENSIONS = (
    ("country", ["US", "DE", "GB", "FR", "IN", "BR"]),
    ("referrer", ["(direct)", "google.com", "t.co", "news.ycombinator.com"]),
    ("browser", ["Chrome", "Safari", "Firefox", "Edge"]),
    ("os", ["Windows", "iOS", "Android", "Mac OS X"]),
    ("device", ["desktop", "mobile", "tablet"]),
)
_TAGS = ["marketing", "social", "newsletter", "q3-launch", "legal", "press"]


@dataclass(frozen=True, slots=True)
class Seeded:
    links: int = 0
    daily: int = 0
    hourly: int = 0
    breakdowns: int = 0

    @property
    def rows(self) -> int:
        return self.daily + self.hourly + self.breakdowns

    def __add__(self, other: Seeded) -> Seeded:
        return Seeded(
            self.links + other.links,
            self.daily + other.daily,
            self.hourly + other.hourly,
            self.breakdowns + other.breakdowns,
        )


@dataclass(frozen=True, slots=True)
class Run:
    """One export measured."""

    seconds: float
    bytes: int
    peak_kib: int
    before_kib: int = 0


def _stamped(value: Any) -> Any:
    # As UTCDateTime stores a time on SQLite: naive UTC text.
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")
    return value


async def insert(
    conn: AsyncConnection, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """Many rows fast: executemany on SQLite, COPY on PostgreSQL."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        marks = ", ".join("?" * len(columns))
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
        await conn.exec_driver_sql(sql, [tuple(map(_stamped, row)) for row in rows])
        return
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    await driver.copy_records_to_table(table, records=rows, columns=list(columns))


async def _users(db: Database) -> list[int]:
    async with db.write(READ_COMMITTED) as conn:
        found = await conn.execute(
            sa.insert(users).returning(users.c.id),
            [{"email": f"user{i}@example.com", "role": "member", "created_at": START}
             for i in range(USERS)],
        )  # fmt: skip
        return [int(user_id) for user_id in found.scalars()]


_LINK_COLUMNS = (
    "id", "domain_id", "code", "url", "is_alias", "user_id", "created_by_user_id",
    "created_at", "updated_at", "redirect_status", "forward_query", "og_title", "version",
    "visits",
)  # fmt: skip


def _link_rows(n: int, owners: list[int], rows: dict[str, list[tuple[Any, ...]]]) -> None:
    """Link number n (its id), its tags and its statistics, added to `rows`."""
    created = START - timedelta(days=DAYS + n % 365)
    owner = owners[n % len(owners)]
    title = f"Title of link {n}, with a comma" if n % 10 == 0 else None
    rows["links"].append((n, 0, f"l{n:07d}", f"https://example.com/page/{n}?ref=bench", False,
                          owner, owner, created, created, 302, False, title, 1, 0))  # fmt: skip
    if n % 10 < 3:
        rows["link_tags"] += [(n, tag) for tag in _TAGS[n % 5 : n % 5 + 1 + n % 2]]
    busy = n % BUSY_EVERY == BUSY_EVERY // 2
    for d in range(365) if busy else range(1 + n % 7):
        day = START - timedelta(days=1 + (d if busy else (n * 7 + d * 13) % DAYS))
        hours = range(24) if busy else (9 + n % 5, 15 + n % 5)
        clicks = 0
        for h in hours:
            rows["link_clicks_hourly"].append((n, day + timedelta(hours=h), 2 + h % 3, h % 2, 1))
            clicks += 2 + h % 3
        rows["link_clicks_daily"].append((n, day, clicks, len(hours) // 2, max(1, clicks // 2)))
        for dimension, values in _DIMENSIONS:
            picks = values[:4] if busy else [values[(n + d) % len(values)]]
            for value in picks:
                rows["link_breakdowns_daily"].append((n, dimension, day, value, 1 + clicks % 5))


_COLUMNS = {
    "links": _LINK_COLUMNS,
    "link_tags": ("link_id", "tag"),
    "link_clicks_hourly": ("link_id", "hour", "clicks", "bot_clicks", "uniques"),
    "link_clicks_daily": ("link_id", "day", "clicks", "bot_clicks", "uniques"),
    "link_breakdowns_daily": ("link_id", "dimension", "day", "value", "clicks"),
}


async def seed(db: Database, first: int, count: int, owners: list[int]) -> Seeded:
    """Links `first` .. `first + count - 1` (their ids), with their statistics."""
    made = Seeded()
    for start in range(first, first + count, 5_000):
        rows: dict[str, list[tuple[Any, ...]]] = {table: [] for table in _COLUMNS}
        for n in range(start, min(start + 5_000, first + count)):
            _link_rows(n, owners, rows)
        async with db.write(READ_COMMITTED) as conn:
            for table, columns in _COLUMNS.items():
                await insert(conn, table, columns, rows[table])
        made += Seeded(
            len(rows["links"]),
            len(rows["link_clicks_daily"]),
            len(rows["link_clicks_hourly"]),
            len(rows["link_breakdowns_daily"]),
        )
    if not db.is_sqlite:
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM ANALYZE")
    return made


def _env(url: str, **more: str) -> dict[str, str]:
    return {
        **os.environ,
        "KURZ_DATABASE_URL": url,
        "KURZ_BASE_URL": BASE_URL,
        # Nothing but the export: no gRPC, no Redis, no clicks, no jobs, no limit.
        "KURZ_GRPC_PORT": "0",
        "KURZ_REDIS_URL": "",
        "KURZ_ANALYTICS": "false",
        "KURZ_EMBEDDED_WORKER": "false",
        "KURZ_RATELIMIT_API": "off",
        **more,
    }


def _checked(end: bytes, seeded: Seeded, where: str) -> None:
    """The export's `end` line counts what was seeded."""
    try:
        counts = json.loads(end)
    except ValueError:
        raise BenchError(f"{where}: no JSON line at the end: {end[-200:]!r}") from None
    wanted = {
        "type": "end", "links": seeded.links, "deleted_links": 0, "clicks_daily": seeded.daily,
        "clicks_hourly": seeded.hourly, "breakdowns_daily": seeded.breakdowns,
    }  # fmt: skip
    if counts != wanted:
        raise BenchError(f"{where}: the export ends with {counts}, not {wanted}")


def _last_line(path: Path) -> bytes:
    with path.open("rb") as file:
        file.seek(max(0, path.stat().st_size - 4_096))
        return file.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]


def cli_export(url: str, tmp: Path, seeded: Seeded) -> Run:
    """`kurz export --output FILE` in a process of its own, to its exit."""
    out, log = tmp / "export.jsonl", tmp / "cli.log"
    argv = pinned(0, [sys.executable, "-m", "kurz", "export", "--output", str(out)])
    with log.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=_env(url), stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise BenchError(f"kurz export failed ({proc.returncode}): {log.read_text()[-2000:]}")
    _checked(_last_line(out), seeded, "kurz export")
    size = out.stat().st_size
    out.unlink()
    # ru_maxrss is in KiB on Linux.
    return Run(seconds, size, usage.ru_maxrss)


def _memory(pid: int, field: str) -> int:
    """VmRSS or VmHWM (the peak) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise BenchError(f"no {field} in /proc/{pid}/status")


def api_export(url: str, tmp: Path, seeded: Seeded) -> Run:
    """One GET /api/v1/export from a fresh `kurz serve`, read to its last byte."""
    port = free_port()
    env = _env(url, KURZ_HOST="127.0.0.1", KURZ_PORT=str(port))
    key = harness.kurz_cli(["keys", "create", "--name", "export", "--admin"], env, tmp)
    procs = Processes(tmp)
    base = f"http://127.0.0.1:{port}"
    try:
        procs.start("kurz", [sys.executable, "-m", "kurz", "serve"], env, tmp)
        procs.wait_ready("kurz", f"{base}/healthz", 200)
        pid = procs.running["kurz"][0].pid
        auth = {"Authorization": f"Bearer {key}"}
        # A first call of the API, so that what only a first request costs is not counted.
        if httpx.get(f"{base}/api/v1/links?limit=1", headers=auth).status_code != 200:
            raise BenchError("GET /api/v1/links with the admin key failed")
        before = _memory(pid, "VmRSS")
        size, tail = 0, b""
        with on_cpu(1):
            started = time.perf_counter()
            with httpx.stream("GET", f"{base}/api/v1/export", headers=auth, timeout=600) as got:
                if got.status_code != 200:
                    raise BenchError(f"GET /api/v1/export: {got.status_code} {got.read()[:500]!r}")
                for piece in got.iter_bytes():
                    size += len(piece)
                    tail = (tail + piece)[-4_096:]
            seconds = time.perf_counter() - started
        peak = _memory(pid, "VmHWM")
    finally:
        procs.stop_all()
    _checked(tail.rstrip(b"\n").rsplit(b"\n", 1)[-1], seeded, "GET /api/v1/export")
    return Run(seconds, size, peak, before)


@dataclass(frozen=True, slots=True)
class Measured:
    backend: str
    seeded: Seeded
    cli: Run
    api: Run


async def _seeded(
    url: str, first: int, count: int, owners: list[int] | None
) -> tuple[Seeded, list[int]]:
    db = Database.from_url(url)
    try:
        owners = owners if owners is not None else await _users(db)
        return await seed(db, first, count, owners), owners
    finally:
        await db.dispose()


async def run(backend: str, links: int, small: int) -> list[Measured]:
    measured = []
    async with harness.migrated_database(backend, "export") as url:
        with tempfile.TemporaryDirectory(prefix="kurz-export-") as folder:
            tmp = Path(folder)
            total, owners = Seeded(), None
            for first, count in ((1, small), (small + 1, links - small)):
                print(f"  seeding {count:,} links ...", flush=True)
                step, owners = await _seeded(url, first, count, owners)
                total += step
                print(f"  exporting {total.links:,} links, {total.rows:,} rows ...", flush=True)
                cli = cli_export(url, tmp, total)
                api = api_export(url, tmp, total)
                measured.append(Measured(backend, total, cli, api))
    return measured


def _mib(kib: int) -> str:
    return f"{kib / 1024:,.0f}"


def report(results: list[Measured], load: tuple[float, float]) -> list[str]:
    lines = [
        f"- machine: {len(os.sched_getaffinity(0))} CPUs (nproc), {cpu_model()}, "
        f"Python {platform.python_version()}; load average {load[0]:.1f} before, "
        f"{load[1]:.1f} after",
        f"- code: kurz {source_state()}",
        "- seeded: 10 users' links, 30% with tags, 10% with a title; about 32 rollup rows a "
        f"link (1 to 7 days of clicks), and one link in {BUSY_EVERY:,} with 365 days of "
        "every hour (docstring of bench/export.py)",
        "- each export: JSON Lines, every link with its statistics (an admin's export), in a "
        "process of its own on CPU 0; CLI: `kurz export --output FILE`, start to exit; API: "
        "a fresh `kurz serve`, one GET /api/v1/export read to its end on CPU 1; every "
        "export's `end` line checked against the rows seeded",
        "- memory: peak resident set of the exporting process (CLI: ru_maxrss from "
        "os.wait4; API: the server's VmHWM, beside its VmRSS before the request)",
        "",
        "| backend | path | links | statistics rows | file | time | links/s | rows/s "
        "| peak RSS | RSS before |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in results:
        for path, done in (("CLI", m.cli), ("API", m.api)):
            before = f"{_mib(done.before_kib)} MiB" if done.before_kib else ""
            lines.append(
                f"| {m.backend} | {path} | {m.seeded.links:,} | {m.seeded.rows:,} "
                f"| {done.bytes / 1e6:,.0f} MB | {done.seconds:,.1f} s "
                f"| {m.seeded.links / done.seconds:,.0f} | {m.seeded.rows / done.seconds:,.0f} "
                f"| {_mib(done.peak_kib)} MiB | {before} |"
            )
    lines.append("")
    for backend in dict.fromkeys(m.backend for m in results):
        pair = [m for m in results if m.backend == backend]
        if len(pair) != 2:
            continue
        few, many = pair
        for path in ("cli", "api"):
            a, b = getattr(few, path), getattr(many, path)
            lines.append(
                f"- {backend}, {path.upper()}: peak RSS {_mib(a.peak_kib)} MiB at "
                f"{few.seeded.links:,} links, {_mib(b.peak_kib)} MiB at {many.seeded.links:,} "
                f"({(b.peak_kib - a.peak_kib) / 1024:+,.0f} MiB for "
                f"{many.seeded.links / few.seeded.links:.0f}x the links)"
            )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(
        prog="python -m bench.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--links", type=int, default=100_000, help="links at the end")
    parser.add_argument("--small", type=int, default=10_000, help="links at the first measure")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument("--no-record", action="store_true", help="do not append to the docs")
    args = parser.parse_args(argv)
    backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    if not set(backends) <= {"sqlite", "postgresql"} or not 0 < args.small < args.links:
        parser.error("--backends from sqlite,postgresql; 0 < --small < --links")
    load_before = os.getloadavg()[0]
    results: list[Measured] = []
    try:
        for backend in backends:
            print(f"{backend}:", flush=True)
            results += asyncio.run(run(backend, args.links, args.small))
    except (BenchError, OSError, asyncpg.PostgresError) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    lines = report(results, (load_before, os.getloadavg()[0]))
    harness.publish(
        f"Exporting {args.links:,} links with their statistics", lines,
        target="bench-export", module="bench.export", argv=argv, keep=not args.no_record,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
