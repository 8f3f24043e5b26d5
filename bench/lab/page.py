"""What every lab experiment shares: scratch databases, tables, and its page's section.

Each script under bench/lab/ measures one question and prints its tables; with
`--write` it also puts them into its page under docs/lab/, between the markers
`<!-- lab:begin -->` and `<!-- lab:end -->`, headed by the machine, the date and the
command. The prose around the markers is written by hand and says what the figures
mean; rerunning a script changes only the figures.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from bench.harness import cpu_model, source_state

PG_ADMIN = os.environ.get("KURZ_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PAGES = Path(__file__).resolve().parents[2] / "docs" / "lab"
BEGIN, END = "<!-- lab:begin -->", "<!-- lab:end -->"


@asynccontextmanager
async def postgres_database(prefix: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one experiment, dropped afterwards; yields its URL."""
    name = f"kurz_lab_{prefix}_{os.getpid()}"
    admin = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {name}")
        try:
            yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
        finally:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


@contextmanager
def sqlite_database(prefix: str) -> Iterator[str]:
    """A fresh SQLite file in a temporary folder, removed afterwards; yields its URL."""
    with tempfile.TemporaryDirectory(prefix=f"kurz-lab-{prefix}-") as folder:
        yield f"sqlite:///{folder}/lab.db"


async def postgres_version() -> str:
    conn = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        version: str = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    return f"PostgreSQL {version.split()[0]}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A Markdown table; numbers right-aligned."""
    cells = [[_cell(value) for value in row] for row in rows]
    numeric = [
        all(isinstance(row[i], int | float) for row in rows) if rows else False
        for i in range(len(headers))
    ]
    lines = ["| " + " | ".join(headers) + " |"]
    lines.append("|" + "|".join("---:" if right else "---" for right in numeric) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return lines


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    return str(value)


def header(command: str, *, postgres: str | None = None) -> list[str]:
    """The lines that say where and when a page's figures were measured, and how again."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    versions = [f"SQLite {sqlite3.sqlite_version}", *([postgres] if postgres else [])]
    return [
        f"Measured {stamp} on {cpu_model()} ({os.cpu_count()} CPUs, shared), "
        f"Python {platform.python_version()}, {', '.join(versions)}, kurz {source_state()}.",
        "",
        f"Command: `{command}`",
        "",
    ]


def publish(page: str, lines: Sequence[str], *, write: bool) -> None:
    """Print the figures, and with `write` put them between the markers of docs/lab/{page}."""
    print("\n".join(lines))
    if not write:
        return
    path = PAGES / page
    text = path.read_text()
    before, begin, rest = text.partition(BEGIN)
    _, end, after = rest.partition(END)
    if not begin or not end:
        raise SystemExit(f"{path} has no {BEGIN} ... {END} section to fill")
    path.write_text("".join([before, BEGIN, "\n", "\n".join(lines), "\n", END, after]))
    print(f"wrote {path.relative_to(PAGES.parents[1])}")
