"""Other systems' databases for the import sources' tests: YOURLS's on MariaDB and
Kutt's on PostgreSQL, SQLite and MariaDB, each made with the DDL the system itself
makes (yourls.sql, kutt_*.sql: where each comes from is in its header), filled with
rows as the system writes them, and dropped after."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

HERE = Path(__file__).parent
DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "mysql": "mysql+aiomysql",
}
_serial = itertools.count()


def statements(script: str) -> list[str]:
    """A DDL file's statements, its comments left out."""
    body = "\n".join(line for line in script.splitlines() if not line.startswith("--"))
    return [part.strip() for part in body.split(";\n") if part.strip()]


def run(url: str, *sql: str) -> None:
    """Statements run on a MariaDB database (or server), in one transaction."""
    engine = sa.create_engine(
        sa.make_url(url).set(drivername="mysql+pymysql"),
        poolclass=NullPool,
        connect_args={"charset": "utf8mb4"},
    )
    try:
        with engine.begin() as conn:
            for statement in sql:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


@contextmanager
def mariadb_database(server: str, prefix: str) -> Iterator[tuple[str, str]]:
    """A MariaDB database of the test's own, empty: its name and URL; dropped after."""
    name = f"kurz_{prefix}_{os.getpid()}_{next(_serial)}"
    run(server, f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    try:
        yield name, server.rstrip("/") + "/" + name
    finally:
        run(server, f"DROP DATABASE IF EXISTS {name}")


# --- YOURLS ---------------------------------------------------------------------

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


class Yourls:
    """A YOURLS database of the test's own, on the test MariaDB."""

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.url = url

    def tables(self, prefix: str = "yourls_") -> None:
        """YOURLS's tables, as its installer makes them, with `prefix`."""
        script = (HERE / "yourls.sql").read_text().replace("`yourls_", f"`{prefix}")
        run(self.url, *statements(script))

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        engine = sa.create_engine(
            sa.make_url(self.url).set(drivername="mysql+pymysql"),
            poolclass=NullPool,
            connect_args={"charset": "utf8mb4"},
        )
        try:
            with engine.begin() as conn:
                columns = sa.table(table, *(sa.column(name) for name in rows[0]))
                conn.execute(columns.insert(), list(rows))
        finally:
            engine.dispose()

    def link(self, keyword: str, url: str, *, clicks: int = 0, **more: Any) -> None:
        row: dict[str, Any] = {
            "keyword": keyword,
            "url": url,
            "title": None,
            "timestamp": datetime(2024, 3, 1, 10, 0, 0),
            "ip": "192.0.2.1",
            "clicks": clicks,
        }
        self.insert("yourls_url", [{**row, **more}])

    def clicks(self, keyword: str, *rows: tuple[str, str, str, str]) -> None:
        """Log rows: (click_time, referrer, user agent, country code)."""
        self.insert(
            "yourls_log",
            [
                {
                    "click_time": at,
                    "shorturl": keyword,
                    "referrer": referrer,
                    "user_agent": agent,
                    "ip_address": "198.51.100.7",
                    "country_code": country,
                }
                for at, referrer, agent, country in rows
            ],
        )


@contextmanager
def yourls_database(server: str) -> Iterator[Yourls]:
    """An empty MariaDB database of the test's own, for YOURLS's tables."""
    with mariadb_database(server, "yourls") as (name, url):
        yield Yourls(name, url)


def fill_yourls(db: Yourls) -> None:
    """Links as YOURLS holds them, and their clicks over several days."""
    db.link(
        "abc",
        "https://example.com/a?x=1",
        title="Café ☕ — 🚀 launch",
        clicks=6,
        timestamp=datetime(2024, 3, 1, 10, 0, 5),
    )
    db.clicks(
        "abc",
        ("2024-03-01 10:15:00", "https://www.news.example/story/1", FIREFOX, "FR"),
        ("2024-03-01 10:45:00", "https://news.example/story/2", FIREFOX, "FR"),
        ("2024-03-01 11:05:00", "direct", CHROME, ""),
        ("2024-03-02 23:59:59", "https://t.co/xyz", IPHONE, "US"),
        ("2024-03-04 00:00:00", "direct", GOOGLEBOT, "US"),
        ("2024-03-04 08:30:00", "android-app://com.slack", CHROME, "de"),
    )
    # Upper case sorts first: YOURLS's keyword column is binary (utf8mb4_bin).
    db.link("Zed", "https://example.com/zed", clicks=3, timestamp=datetime(2023, 12, 31, 23, 0))
    db.link("mixed", "https://example.com/m", clicks=4, title="")
    db.clicks("mixed", ("2024-03-05 12:00:00", "direct", IPHONE, "GB"))
    db.link("none", "https://example.com/n")
    # A log row of a keyword no link has any more: never read.
    db.clicks("gone", ("2024-03-05 12:00:00", "direct", IPHONE, "GB"))


# --- Kutt -----------------------------------------------------------------------

BCRYPT = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
USER = "INSERT INTO users (id, email, password) VALUES (1, 'a@example.com', 'x')"


class Kutt:
    """A Kutt database of the test's own: PostgreSQL, SQLite or MariaDB."""

    def __init__(self, family: str, url: str) -> None:
        self.family = family
        self.url = url

    def when(self, at: datetime) -> Any:
        # PostgreSQL's columns are timestamptz; in SQLite Kutt writes UTC text, in MySQL
        # its server's local time (UTC here).
        if self.family == "postgresql":
            return at
        if self.family == "mysql":
            return at.astimezone(UTC).replace(tzinfo=None)
        return at.strftime("%Y-%m-%d %H:%M:%S")

    async def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        url = sa.make_url(self.url).set(drivername=DRIVERS[self.family])
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                columns = sa.table(table, *(sa.column(name) for name in rows[0]))
                await conn.execute(columns.insert(), list(rows))
        finally:
            await engine.dispose()

    async def link(self, id: int, address: str, target: str, **more: Any) -> str:
        uuid = f"00000000-0000-4000-8000-{id:012d}"
        row = {
            "id": id,
            "uuid": uuid,
            "address": address,
            "target": target,
            "user_id": 1,
            "visit_count": 0,
            "created_at": self.when(datetime(2025, 1, 2, 10, 0, tzinfo=UTC)),
            **more,
        }
        await self.insert("links", [row])
        return uuid

    async def visit(self, link_id: int, at: datetime, total: int, **counts: Any) -> None:
        row = {"link_id": link_id, "user_id": 1, "created_at": self.when(at), "total": total}
        for name in ("countries", "referrers"):
            row[name] = json.dumps(counts.pop(name, {}))
        await self.insert("visits", [{**row, **counts}])


async def _load_postgres(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute((HERE / "kutt_postgresql.sql").read_text())
        await conn.execute(USER)
    finally:
        await conn.close()


def kutt_postgres(url: str) -> Kutt:
    """Kutt's tables and its one user in the empty PostgreSQL database at `url`."""
    asyncio.run(_load_postgres(url))
    return Kutt("postgresql", url)


def kutt_sqlite(path: Path) -> Kutt:
    """Kutt's tables and its one user in a new SQLite file at `path`."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript((HERE / "kutt_sqlite.sql").read_text())
        conn.execute(USER)
        conn.commit()
    finally:
        conn.close()
    return Kutt("sqlite", f"sqlite:///{path}")


@contextmanager
def kutt_mariadb(server: str) -> Iterator[Kutt]:
    """Kutt's tables and its one user in a MariaDB database of the test's own."""
    with mariadb_database(server, "kutt") as (_name, url):
        run(url, *statements((HERE / "kutt_mariadb.sql").read_text()), USER)
        yield Kutt("mysql", url)


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A time in January 2025, UTC."""
    return datetime(2025, 1, day, hour, minute, second, tzinfo=UTC)


async def fill_kutt(db: Kutt) -> None:
    await db.insert("domains", [{"id": 7, "address": "go.example.org", "user_id": 1}])
    await db.link(
        1,
        "abc",
        "https://example.com/a?x=1",
        description="Café ☕ — 🚀",
        expire_in=db.when(datetime(2030, 1, 1, tzinfo=UTC)),
        visit_count=7,
    )
    # Rows as Kutt's visit queue makes them: one per link and hour, made by its first
    # visit; referrers' dots written "[dot]", lower-case countries, "unknown", "direct".
    await db.visit(
        1, at(2, 13, 0, 5), 3, br_chrome=2, br_firefox=1, os_windows=2, os_linux=1,
        countries={"us": 2, "unknown": 1}, referrers={"news[dot]example": 2, "direct": 1},
    )  # fmt: skip
    await db.visit(
        1, at(2, 15, 10), 1, br_safari=1, os_ios=1,
        countries={"de": 1}, referrers={"direct": 1},
    )  # fmt: skip
    await db.visit(
        1, at(3, 0, 20), 2, br_other=1, br_edge=1, os_other=1, os_macos=1,
        countries={"fr": 2}, referrers={"t[dot]co": 2},
    )  # fmt: skip
    await db.link(2, "Promo", "https://example.com/promo", domain_id=7)
    await db.link(3, "bad", "https://malware.example/", banned=True, visit_count=4)
    await db.visit(3, at(2, 9), 4, br_chrome=4, os_windows=4)
    await db.link(4, "secret", "https://example.com/s", password=BCRYPT)
    await db.link(5, "old", "https://example.com/old", visit_count=2, description="")
