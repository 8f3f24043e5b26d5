"""The Kutt database source against a real PostgreSQL, a real SQLite file and a real
MariaDB, each made with the DDL Kutt's own migrations produce there
(kutt_postgresql.sql, kutt_sqlite.sql, kutt_mariadb.sql) and filled with rows as Kutt
writes them."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

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
from tests.integration.imports.others import (
    Kutt,
    at,
    fill_kutt,
    kutt_mariadb,
    kutt_postgres,
    kutt_sqlite,
)


@pytest.fixture(params=["postgresql", "sqlite", "mysql"])
def kutt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Kutt]:
    """Kutt's tables and its one user, in an empty PostgreSQL or MariaDB database or a
    SQLite file of the test's own."""
    if request.param == "postgresql":
        yield kutt_postgres(request.getfixturevalue("empty_postgres_url"))
    elif request.param == "mysql":
        with kutt_mariadb(request.getfixturevalue("mariadb_url")) as db:
            yield db
    else:
        yield kutt_sqlite(tmp_path / "data")


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
    await fill_kutt(kutt)
    opened = source(kutt.url)
    try:
        assert await opened.total() == 5
        pages = [page async for page in opened.pages(None)]
    finally:
        await opened.aclose()
    assert [page.position for page in pages] == ["5"]
    assert items(pages) == EVERYTHING


async def test_pages_and_resuming_after_one(kutt: Kutt, monkeypatch: pytest.MonkeyPatch) -> None:
    await fill_kutt(kutt)
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
    await fill_kutt(kutt)
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
    # Options that could point the driver elsewhere (a local socket) are refused too.
    with pytest.raises(SourceError, match="options host may be given only to `kurz import`"):
        source("postgresql://u@93.184.215.14/kutt?host=/run/postgresql", allow_private=False)
    source("postgresql://u@93.184.215.14/kutt?sslmode=require", allow_private=False)
    source("postgresql://u@127.0.0.1/kutt?host=/run/postgresql")


def test_settings() -> None:
    kind = KINDS["kutt"]
    assert (kind.name, kind.source, kind.takes_file) == ("kutt", "kutt", False)
    with pytest.raises(ValidationError):
        kind.settings.model_validate({})
    settings = kind.settings.model_validate({"database_url": "postgresql://u:hunter2@h/k"})
    assert "hunter2" not in repr(settings)


async def test_mysql_times_in_the_zone_kutt_wrote_them(mariadb_url: str) -> None:
    with kutt_mariadb(mariadb_url) as db:
        await _times_in_new_york(db)


async def _times_in_new_york(db: Kutt) -> None:
    # New York is UTC-5 in January: Kutt's server wrote these at 19:xx local time.
    await db.link(1, "abc", "https://example.com/", created_at=datetime(2025, 1, 1, 19, 5))
    await db.visit(1, datetime(2025, 1, 1, 19, 40), 1, br_firefox=1, os_linux=1)
    opened = kutt_db.KIND.open(
        Opening(
            settings=kutt_db.KuttSettings.model_validate(
                {"database_url": db.url, "timezone": "America/New_York"}
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
