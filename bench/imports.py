"""Importing 100,000 CSV rows: the rate, and that memory stays flat whatever the file's
size, through `kurz import csv FILE`, SQLite and PostgreSQL.

    python -m bench.imports [--rows 100000] [--small 10000] [--backends sqlite,postgresql]
                            [--no-record]

Each size is imported into a fresh migrated database (a SQLite file; a PostgreSQL
database made on KURZ_BENCH_PG and dropped after) by `kurz import csv FILE` in a
process of its own on CPU 0, timed from start to exit (a Python start included: the
figure a person waits); its peak memory is the process's ru_maxrss (os.wait4). The file
is made the same way every run: half the rows have an alias, 10% a title (with a comma),
30% one or two tags, every row a created_at; one row in 1,000 has a URL kurz refuses
(reported as failed, the rest goes on). Every import is checked: its counts in the
database say every row was read, and imported or failed as made.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
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

import asyncpg
import sqlalchemy as sa

from bench import harness
from bench.harness import BenchError, cpu_model, pinned, source_state
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import imports, links, users

START = datetime(2024, 1, 1, tzinfo=UTC)
BASE_URL = "https://kurz.test"
ADMIN = "admin@example.com"
BAD_EVERY = 1_000
_TAGS = ["marketing", "social", "newsletter", "q3-launch", "legal", "press"]


@dataclass(frozen=True, slots=True)
class Run:
    backend: str
    rows: int
    bytes: int
    seconds: float
    peak_kib: int
    imported: int
    failed: int


def write_csv(path: Path, rows: int) -> int:
    """The file of `rows` rows; the number of them kurz should refuse."""
    bad = 0
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["url", "alias", "title", "tags", "created_at"])
        for n in range(rows):
            url = f"https://example.com/page/{n}?ref=import"
            if n % BAD_EVERY == BAD_EVERY - 1:
                url, bad = f"ftp://example.com/{n}", bad + 1
            alias = f"imp-{n:07d}" if n % 2 == 0 else ""
            title = f"Title of row {n}, with a comma" if n % 10 == 0 else ""
            tags = "|".join(_TAGS[n % 5 : n % 5 + 1 + n % 2]) if n % 10 < 3 else ""
            created = (START + timedelta(minutes=n)).isoformat()
            writer.writerow([url, alias, title, tags, created])
    return bad


def _env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "KURZ_DATABASE_URL": url,
        "KURZ_BASE_URL": BASE_URL,
        "KURZ_GRPC_PORT": "0",
        "KURZ_REDIS_URL": "",
        "KURZ_ANALYTICS": "false",
        "KURZ_EMBEDDED_WORKER": "false",
    }


async def _admin(url: str) -> None:
    db = Database.from_url(url)
    try:
        async with db.write(READ_COMMITTED) as conn:
            await conn.execute(sa.insert(users).values(email=ADMIN, role="admin", created_at=START))
    finally:
        await db.dispose()


async def _counts(url: str) -> tuple[str, int, int, int, int]:
    db = Database.from_url(url)
    try:
        async with db.read() as conn:
            row = (await conn.execute(sa.select(imports))).one()
            made = (await conn.execute(sa.select(sa.func.count()).select_from(links))).scalar_one()
        return row.status, row.read, row.imported, row.failed, int(made)
    finally:
        await db.dispose()


def cli_import(backend: str, url: str, tmp: Path, rows: int) -> Run:
    """`kurz import csv FILE` into a fresh database, in a process of its own, to its exit."""
    data, log = tmp / f"links-{rows}.csv", tmp / "cli.log"
    bad = write_csv(data, rows)
    asyncio.run(_admin(url))
    argv = pinned(0, [sys.executable, "-m", "kurz", "import", "csv", str(data)])
    with log.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=_env(url), stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise BenchError(f"kurz import failed ({code}): {log.read_text()[-2000:]}")
    state, read, imported, failed, made = asyncio.run(_counts(url))
    wanted = ("finished", rows, rows - bad, bad, rows - bad)
    if (state, read, imported, failed, made) != wanted:
        raise BenchError(
            f"the import ended {(state, read, imported, failed, made)}, not {wanted} "
            "(status, read, imported, failed, links)"
        )
    size = data.stat().st_size
    data.unlink()
    return Run(backend, rows, size, seconds, usage.ru_maxrss, imported, failed)


async def _fresh(backend: str, rows: int, tmp: Path) -> Run:
    async with harness.migrated_database(backend, "import") as url:
        return await asyncio.to_thread(cli_import, backend, url, tmp, rows)


def run(backend: str, sizes: Sequence[int]) -> list[Run]:
    done = []
    with tempfile.TemporaryDirectory(prefix="kurz-import-") as folder:
        for rows in sizes:
            print(f"  importing {rows:,} rows ...", flush=True)
            done.append(asyncio.run(_fresh(backend, rows, Path(folder))))
    return done


def _mib(kib: int) -> str:
    return f"{kib / 1024:,.0f}"


def report(results: list[Run], load: tuple[float, float]) -> list[str]:
    lines = [
        f"- machine: {len(os.sched_getaffinity(0))} CPUs (nproc), {cpu_model()}, "
        f"Python {platform.python_version()}; load average {load[0]:.1f} before, "
        f"{load[1]:.1f} after",
        f"- code: kurz {source_state()}",
        "- the file: url, alias (half the rows), title (10%), tags (30%), created_at; one "
        f"row in {BAD_EVERY:,} with a URL kurz refuses (docstring of bench/imports.py)",
        "- each import: `kurz import csv FILE` into a fresh database, in a process of its "
        "own on CPU 0, start to exit (the file stored, read, every page written and the "
        "report kept); its counts checked in the database",
        "- memory: peak resident set of the importing process (ru_maxrss from os.wait4)",
        "",
        "| backend | rows | file | time | rows/s | imported | failed | peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.rows:,} | {r.bytes / 1e6:,.1f} MB | {r.seconds:,.1f} s "
            f"| {r.rows / r.seconds:,.0f} | {r.imported:,} | {r.failed:,} "
            f"| {_mib(r.peak_kib)} MiB |"
        )
    lines.append("")
    for backend in dict.fromkeys(r.backend for r in results):
        pair = [r for r in results if r.backend == backend]
        if len(pair) == 2:
            few, many = pair
            lines.append(
                f"- {backend}: peak RSS {_mib(few.peak_kib)} MiB at {few.rows:,} rows, "
                f"{_mib(many.peak_kib)} MiB at {many.rows:,} "
                f"({(many.peak_kib - few.peak_kib) / 1024:+,.0f} MiB for "
                f"{many.rows / few.rows:.0f}x the rows)"
            )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(
        prog="python -m bench.imports",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the large file")
    parser.add_argument("--small", type=int, default=10_000, help="rows of the small file")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument("--no-record", action="store_true", help="do not append to the docs")
    args = parser.parse_args(argv)
    backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    if not set(backends) <= {"sqlite", "postgresql"} or not 0 < args.small < args.rows:
        parser.error("--backends from sqlite,postgresql; 0 < --small < --rows")
    load_before = os.getloadavg()[0]
    results: list[Run] = []
    try:
        for backend in backends:
            print(f"{backend}:", flush=True)
            results += run(backend, (args.small, args.rows))
    except (BenchError, OSError, asyncpg.PostgresError) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    lines = report(results, (load_before, os.getloadavg()[0]))
    harness.publish(
        f"Importing {args.rows:,} CSV rows", lines,
        target="bench-import", module="bench.imports", argv=argv, keep=not args.no_record,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
