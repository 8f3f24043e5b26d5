"""The Kutt database source against a real PostgreSQL, a real SQLite file and a real
MariaDB, each made with the DDL Kutt's own migrations produce there
(kutt_postgresql.sql, kutt_sqlite.sql, kutt_mariadb.sql) and filled with rows as Kutt
writes them."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from kurz.imports import kutt_db
from kurz.imports.kinds import KINDS
from kurz.imports.sources import (
    Clicks,
    DayBreakdown,
    DayClicks,
    HourClicks,
    Item,
    Opening,
    Page,
    Record,
    SourceError,
    Unreadable,
)

HERE = Path(__file__).parent
DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "mysql": "mysql+aiomysql",
}
_serial = itertools.count()
BCRYPT = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"


class Kutt:
    """A Kutt database of the test's own: PostgreSQL or SQLite."""

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


USER = "INSERT INTO users (id, email, password) VALUES (1, 'a@example.com', 'x')"


async def _load_postgres(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute((HERE / "kutt_postgresql.sql").read_text())
        await conn.execute(USER)
    finally:
        await conn.close()


def _mariadb(server: str, *statements: str) -> None:
    engine = sa.create_engine(sa.make_url(server).set(drivername="mysql+pymysql"))
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


@pytest.fixture
def kutt_mariadb(mariadb_url: str) -> Iterator[str]:
    """A MariaDB database of the test's own, with Kutt's tables."""
    name = f"kurz_kutt_{os.getpid()}_{next(_serial)}"
    _mariadb(mariadb_url, f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    url = mariadb_url.rstrip("/") + "/" + name
    try:
        script = "\n".join(
            line for line in (HERE / "kutt_mariadb.sql").read_text().splitlines()
            if not line.startswith("--")
        )  # fmt: skip
        _mariadb(url, *(part for part in script.split(";\n") if part.strip()), USER)
        yield url
    finally:
        _mariadb(mariadb_url, f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture(params=["postgresql", "sqlite", "mysql"])
def kutt(request: pytest.FixtureRequest, tmp_path: Path) -> Kutt:
    """Kutt's tables, in an empty PostgreSQL or MariaDB database or a SQLite file of the
    test's own, with its one user."""
    if request.param == "postgresql":
        url = request.getfixturevalue("empty_postgres_url")
        asyncio.run(_load_postgres(url))
    elif request.param == "mysql":
        url = request.getfixturevalue("kutt_mariadb")
    else:
        path = tmp_path / "data"
        conn = sqlite3.connect(path)
        try:
            conn.executescript((HERE / "kutt_sqlite.sql").read_text())
            conn.execute(USER)
            conn.commit()
        finally:
            conn.close()
        url = f"sqlite:///{path}"
    return Kutt(request.param, url)


def source(url: str, *, allow_private: bool = True) -> kutt_db.KuttSource:
    kind = KINDS["kutt"]
    settings = kind.settings.model_validate({"database_url": url})
    opened = kind.open(Opening(settings=settings, allow_private=allow_private))
    assert isinstance(opened, kutt_db.KuttSource)
    return opened


async def read(url: str, after: str | None = None) -> list[Page]:
    opened = source(url)
    try:
        return [page async for page in opened.pages(after)]
    finally:
        await opened.aclose()


def items(pages: Sequence[Page]) -> list[Item]:
    return [item for page in pages for item in page.items]


def breakdowns(*rows: tuple[str, date, str, int]) -> tuple[DayBreakdown, ...]:
    """In the order the source gives them: by dimension, day and value."""
    return tuple(DayBreakdown(*row) for row in sorted(rows, key=lambda row: row[:3]))


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2025, 1, day, hour, minute, second, tzinfo=UTC)


async def fill(db: Kutt) -> None:
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


D2, D3 = date(2025, 1, 2), date(2025, 1, 3)
EVERYTHING: list[Item] = [
    Record(
        place="link abc",
        source_id="00000000-0000-4000-8000-000000000001",
        url="https://example.com/a?x=1",
        alias="abc",
        title="Café ☕ — 🚀",
        created_at=at(2, 10),
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
    ),
    Clicks(
        source_id="00000000-0000-4000-8000-000000000001",
        daily=(DayClicks(D2, 4), DayClicks(D3, 2)),
        hourly=(HourClicks(at(2, 13), 3), HourClicks(at(2, 15), 1), HourClicks(at(3, 0), 2)),
        breakdowns=breakdowns(
            ("browser", D2, "Chrome", 2),
            ("browser", D2, "Firefox", 1),
            ("browser", D2, "Safari", 1),
            ("browser", D3, "Edge", 1),
            ("browser", D3, "Other", 1),
            ("country", D2, "(unknown)", 1),
            ("country", D2, "DE", 1),
            ("country", D2, "US", 2),
            ("country", D3, "FR", 2),
            ("os", D2, "Linux", 1),
            ("os", D2, "Windows", 2),
            ("os", D2, "iOS", 1),
            ("os", D3, "Mac OS X", 1),
            ("os", D3, "Other", 1),
            ("referrer", D2, "(direct)", 2),
            ("referrer", D2, "news.example", 2),
            ("referrer", D3, "t.co", 2),
        ),
        # visit_count says 7, the visits rows 6.
        total=1,
    ),
    Record(
        place="link go.example.org/Promo",
        source_id="00000000-0000-4000-8000-000000000002",
        url="https://example.com/promo",
        alias="Promo",
        domain="go.example.org",
        created_at=at(2, 10),
    ),
    Unreadable(
        place="link bad",
        reason="banned in Kutt (it shows Kutt's banned page, not its target)",
        source_id="00000000-0000-4000-8000-000000000003",
    ),
    Unreadable(
        place="link secret",
        reason="password-protected in Kutt: its password is a bcrypt hash kurz cannot "
        "check, and the link would open without one",
        source_id="00000000-0000-4000-8000-000000000004",
    ),
    Record(
        place="link old",
        source_id="00000000-0000-4000-8000-000000000005",
        url="https://example.com/old",
        alias="old",
        created_at=at(2, 10),
    ),
    Clicks(source_id="00000000-0000-4000-8000-000000000005", total=2),
]


async def test_links_and_their_visits(kutt: Kutt) -> None:
    await fill(kutt)
    opened = source(kutt.url)
    try:
        assert await opened.total() == 5
        pages = [page async for page in opened.pages(None)]
    finally:
        await opened.aclose()
    assert [page.position for page in pages] == ["5"]
    assert items(pages) == EVERYTHING


async def test_pages_and_resuming_after_one(kutt: Kutt, monkeypatch: pytest.MonkeyPatch) -> None:
    await fill(kutt)
    monkeypatch.setattr(kutt_db, "PAGE", 2)
    pages = await read(kutt.url)
    assert [page.position for page in pages] == ["2", "4", "5"]
    assert [len(page.items) for page in pages] == [3, 2, 2]
    assert items(pages) == EVERYTHING
    for n in range(len(pages)):
        assert await read(kutt.url, after=pages[n].position) == pages[n + 1 :]


async def test_a_database_without_kutt_tables(empty_postgres_url: str, tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    sqlite3.connect(path).close()
    for url in (empty_postgres_url, f"sqlite:///{path}"):
        opened = source(url)
        with pytest.raises(SourceError, match="has no table links nor domains nor visits"):
            await opened.total()
        with pytest.raises(SourceError, match="has no table links nor domains nor visits"):
            await anext(aiter(opened.pages(None)))
        await opened.aclose()


async def test_urls_that_cannot_be_read(empty_postgres_url: str, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    wrong_password = sa.make_url(empty_postgres_url).set(password="Not-The-Password-7")
    nowhere = sa.make_url(empty_postgres_url).set(database="kurz_no_such_database")
    for url, why in (
        (f"postgresql://postgres@127.0.0.1:{port}/kutt", f"at 127.0.0.1:{port}/kutt: "),
        (nowhere.render_as_string(), 'database "kurz_no_such_database" does not exist'),
        (f"sqlite:///{tmp_path}/missing.db", f"there is no SQLite file at {tmp_path}/missing.db"),
        (f"sqlite:///{tmp_path}", "there is no SQLite file"),
        ("redis://127.0.0.1/0", "must begin with mysql://, mariadb://, postgresql://, postgres"),
        ("kutt", "not a URL"),
    ):
        with pytest.raises(SourceError, match=why):
            await read(url)
    # No file is made where none was.
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(SourceError) as caught:
        await read(wrong_password.render_as_string(hide_password=False))
    assert "Not-The-Password-7" not in str(caught.value)


async def test_the_database_is_only_read(kutt: Kutt) -> None:
    await fill(kutt)
    opened = source(kutt.url)
    try:
        engine = await opened._connected_engine()
        async with engine.connect() as conn:
            with pytest.raises(sa.exc.DBAPIError, match=r"(?i)read-only|readonly|read only"):
                await conn.execute(sa.text("DELETE FROM visits"))
    finally:
        await opened.aclose()
    assert len(items(await read(kutt.url))) == len(EVERYTHING)


def test_private_addresses_and_files_only_when_allowed(tmp_path: Path) -> None:
    for url in (
        "postgresql://u@127.0.0.1/kutt",
        "postgres://u@localhost/kutt",
        "postgresql://u@[fd00::1]/kutt",
    ):
        with pytest.raises(SourceError, match="may not be reached"):
            source(url, allow_private=False)
    (tmp_path / "data").touch()
    with pytest.raises(SourceError, match="only `kurz import` may name one"):
        source(f"sqlite:///{tmp_path / 'data'}", allow_private=False)
    source("postgresql://u@93.184.215.14/kutt", allow_private=False)


def test_settings() -> None:
    kind = KINDS["kutt"]
    assert (kind.name, kind.source, kind.takes_file) == ("kutt", "kutt", False)
    with pytest.raises(ValidationError):
        kind.settings.model_validate({})
    settings = kind.settings.model_validate({"database_url": "postgresql://u:hunter2@h/k"})
    assert "hunter2" not in repr(settings)


async def test_mysql_times_in_the_zone_kutt_wrote_them(kutt_mariadb: str) -> None:
    db = Kutt("mysql", kutt_mariadb)
    # New York is UTC-5 in January: Kutt's server wrote these at 19:xx local time.
    await db.link(1, "abc", "https://example.com/", created_at=datetime(2025, 1, 1, 19, 5))
    await db.visit(1, datetime(2025, 1, 1, 19, 40), 1, br_firefox=1, os_linux=1)
    opened = kutt_db.KIND.open(
        Opening(
            settings=kutt_db.KuttSettings.model_validate(
                {"database_url": kutt_mariadb, "timezone": "America/New_York"}
            ),
            allow_private=True,
        )
    )
    try:
        found = items([page async for page in opened.pages(None)])
    finally:
        await opened.aclose()
    day = date(2025, 1, 2)
    assert found == [
        Record(
            place="link abc",
            source_id="00000000-0000-4000-8000-000000000001",
            url="https://example.com/",
            alias="abc",
            created_at=datetime(2025, 1, 2, 0, 5, tzinfo=UTC),
        ),
        Clicks(
            source_id="00000000-0000-4000-8000-000000000001",
            daily=(DayClicks(day, 1),),
            hourly=(HourClicks(datetime(2025, 1, 2, 0, tzinfo=UTC), 1),),
            breakdowns=breakdowns(("browser", day, "Firefox", 1), ("os", day, "Linux", 1)),
        ),
    ]
