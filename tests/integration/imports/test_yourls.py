"""The YOURLS source against a real MariaDB: a database per test, made with YOURLS's own
CREATE TABLE statements (yourls.sql), filled with rows as YOURLS writes them."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from kurz.imports import yourls
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
)
from tests.integration.imports.others import (
    FIREFOX,
    Yourls,
    fill_yourls,
    yourls_database,
)


@pytest.fixture
def empty_db(mariadb_url: str) -> Iterator[Yourls]:
    """A MariaDB database of the test's own, with no tables."""
    with yourls_database(mariadb_url) as db:
        yield db


@pytest.fixture
def db(empty_db: Yourls) -> Yourls:
    """The test's database with YOURLS's tables, as YOURLS's installer makes them."""
    empty_db.tables()
    return empty_db


def source(url: str, **settings: Any) -> yourls.YourlsSource:
    kind = KINDS["yourls"]
    opened = kind.open(
        Opening(
            settings=kind.settings.model_validate({"database_url": url, **settings}),
            allow_private=True,
        )
    )
    assert isinstance(opened, yourls.YourlsSource)
    return opened


async def read(url: str, after: str | None = None, **settings: Any) -> list[Page]:
    opened = source(url, **settings)
    try:
        return [page async for page in opened.pages(after)]
    finally:
        await opened.aclose()


def items(pages: Sequence[Page]) -> list[Item]:
    return [item for page in pages for item in page.items]


def hour(day: int, at: int, month: int = 3) -> datetime:
    return datetime(2024, month, day, at, tzinfo=UTC)


def breakdowns(*rows: tuple[str, date, str, int]) -> tuple[DayBreakdown, ...]:
    """In the order the source gives them: by dimension, day and value."""
    return tuple(DayBreakdown(*row) for row in sorted(rows, key=lambda row: row[:3]))


ZED = Record(
    place="keyword Zed",
    source_id="Zed",
    url="https://example.com/zed",
    alias="Zed",
    created_at=datetime(2023, 12, 31, 23, 0, tzinfo=UTC),
)
ABC = Record(
    place="keyword abc",
    source_id="abc",
    url="https://example.com/a?x=1",
    alias="abc",
    title="Café ☕ — 🚀 launch",
    created_at=datetime(2024, 3, 1, 10, 0, 5, tzinfo=UTC),
)
D1, D2, D4, D5 = date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 4), date(2024, 3, 5)
ABC_CLICKS = Clicks(
    source_id="abc",
    daily=(DayClicks(D1, 3), DayClicks(D2, 1), DayClicks(D4, 1, bot_clicks=1)),
    hourly=(
        HourClicks(hour(1, 10), 2),
        HourClicks(hour(1, 11), 1),
        HourClicks(hour(2, 23), 1),
        HourClicks(hour(4, 0), 0, bot_clicks=1),
        HourClicks(hour(4, 8), 1),
    ),
    breakdowns=breakdowns(
        ("bot", D4, "Googlebot", 1),
        ("browser", D1, "Chrome", 1),
        ("browser", D1, "Firefox", 2),
        ("browser", D2, "Mobile Safari", 1),
        ("browser", D4, "Chrome", 1),
        ("country", D1, "(unknown)", 1),
        ("country", D1, "FR", 2),
        ("country", D2, "US", 1),
        ("country", D4, "DE", 1),
        ("device", D1, "desktop", 3),
        ("device", D2, "mobile", 1),
        ("device", D4, "desktop", 1),
        ("os", D1, "Linux", 2),
        ("os", D1, "Windows", 1),
        ("os", D2, "iOS", 1),
        ("os", D4, "Windows", 1),
        # www. dropped, as kurz counts its own referrers; an app's referrer is no site's.
        ("referrer", D1, "(direct)", 1),
        ("referrer", D1, "news.example", 2),
        ("referrer", D2, "t.co", 1),
        ("referrer", D4, "(direct)", 1),
    ),
)
MIXED = Record(
    place="keyword mixed",
    source_id="mixed",
    url="https://example.com/m",
    alias="mixed",
    created_at=datetime(2024, 3, 1, 10, 0, tzinfo=UTC),
)
# Four clicks counted, one logged: three are the link's, undated.
MIXED_CLICKS = Clicks(
    source_id="mixed",
    daily=(DayClicks(D5, 1),),
    hourly=(HourClicks(hour(5, 12), 1),),
    breakdowns=breakdowns(
        ("browser", D5, "Mobile Safari", 1),
        ("country", D5, "GB", 1),
        ("device", D5, "mobile", 1),
        ("os", D5, "iOS", 1),
        ("referrer", D5, "(direct)", 1),
    ),
    total=3,
)
NONE = Record(
    place="keyword none",
    source_id="none",
    url="https://example.com/n",
    alias="none",
    created_at=datetime(2024, 3, 1, 10, 0, tzinfo=UTC),
)
EVERYTHING: list[Item] = [
    ZED,
    # Its log pruned: all of its clicks undated.
    Clicks(source_id="Zed", total=3),
    ABC,
    ABC_CLICKS,
    MIXED,
    MIXED_CLICKS,
    NONE,
]


async def test_links_and_their_clicks(db: Yourls) -> None:
    fill_yourls(db)
    opened = source(db.url)
    try:
        assert await opened.total() == 4
        pages = [page async for page in opened.pages(None)]
    finally:
        await opened.aclose()
    assert [page.position for page in pages] == ["none"]
    assert items(pages) == EVERYTHING


async def test_pages_and_resuming_after_one(db: Yourls, monkeypatch: pytest.MonkeyPatch) -> None:
    fill_yourls(db)
    monkeypatch.setattr(yourls, "PAGE", 2)
    pages = await read(db.url)
    # A link's clicks come in its page, after it.
    assert [[getattr(item, "source_id", None) for item in page.items] for page in pages] == [
        ["Zed", "Zed", "abc", "abc"],
        ["mixed", "mixed", "none"],
    ]
    assert [page.position for page in pages] == ["abc", "none"]
    assert items(pages) == EVERYTHING
    rest = await read(db.url, after=pages[0].position)
    assert rest == pages[1:]
    assert await read(db.url, after=pages[-1].position) == []


async def test_times_in_the_zone_yourls_wrote_them(db: Yourls) -> None:
    db.link("abc", "https://example.com/a", clicks=2, timestamp=datetime(2024, 7, 1, 1, 30))
    db.clicks(
        "abc",
        # Paris is UTC+2 in summer: these are 22:xx UTC on the day before.
        ("2024-07-02 00:30:00", "direct", FIREFOX, "FR"),
        ("2024-07-02 00:50:00", "direct", FIREFOX, "FR"),
    )
    found = items(await read(db.url, timezone="Europe/Paris"))
    day = date(2024, 7, 1)
    assert found == [
        Record(
            place="keyword abc",
            source_id="abc",
            url="https://example.com/a",
            alias="abc",
            created_at=datetime(2024, 6, 30, 23, 30, tzinfo=UTC),
        ),
        Clicks(
            source_id="abc",
            daily=(DayClicks(day, 2),),
            hourly=(HourClicks(hour(1, 22, month=7), 2),),
            breakdowns=breakdowns(
                ("browser", day, "Firefox", 2),
                ("country", day, "FR", 2),
                ("device", day, "desktop", 2),
                ("os", day, "Linux", 2),
                ("referrer", day, "(direct)", 2),
            ),
        ),
    ]


async def test_the_database_is_only_read(db: Yourls) -> None:
    fill_yourls(db)
    opened = source(db.url)
    try:
        engine = await opened._connected_engine()
        async with engine.connect() as conn:
            with pytest.raises(sa.exc.DBAPIError, match="READ ONLY transaction"):
                await conn.execute(sa.text("DELETE FROM yourls_log"))
    finally:
        await opened.aclose()
    assert items(await read(db.url)) == EVERYTHING


async def test_a_table_prefix(empty_db: Yourls) -> None:
    empty_db.tables(prefix="short_")
    empty_db.insert(
        "short_url",
        [{"keyword": "k", "url": "https://example.com/", "ip": "::1", "clicks": 0,
          "timestamp": datetime(2024, 1, 1)}],
    )  # fmt: skip
    found = items(await read(empty_db.url, table_prefix="short_"))
    assert [item.source_id for item in found if isinstance(item, Record)] == ["k"]


async def test_a_wrong_password_says_so_without_the_password(db: Yourls) -> None:
    url = sa.make_url(db.url).set(password="not-the-Password-42")
    with pytest.raises(SourceError) as caught:
        await read(url.render_as_string(hide_password=False))
    message = str(caught.value)
    assert "not-the-Password-42" not in message
    assert message.startswith(f"cannot read the YOURLS database at 127.0.0.1:3306/{db.name}: ")
    assert "Access denied" in message


async def test_a_database_without_yourls_tables(empty_db: Yourls) -> None:
    for wrong in (source(empty_db.url), source(empty_db.url, table_prefix="other_")):
        with pytest.raises(SourceError, match=r"has no table \w+url nor \w+log"):
            await wrong.total()
        with pytest.raises(SourceError, match=r"has no table \w+url nor \w+log"):
            await anext(aiter(wrong.pages(None)))
        await wrong.aclose()


async def test_a_database_that_does_not_answer() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port once the probe is closed.
    with pytest.raises(
        SourceError, match=rf"^cannot read the YOURLS database at 127.0.0.1:{port}/"
    ):
        await read(f"mysql://root:pw@127.0.0.1:{port}/yourls")


async def test_a_database_that_is_not_there(mariadb_url: str) -> None:
    url = mariadb_url.rstrip("/") + f"/kurz_nothing_{os.getpid()}"
    with pytest.raises(SourceError, match="Unknown database"):
        await read(url)


def test_urls_it_takes(mariadb_url: str) -> None:
    for url in ("mysql://u@db.example/y", "mariadb://u:p@db.example:3307/y",
                "mysql+pymysql://u@db.example/y"):  # fmt: skip
        assert source(url).database.url.drivername == "mysql+aiomysql"
    for url, why in (
        ("postgresql://u@db.example/y", "must begin with mysql://, mariadb://"),
        ("sqlite:///yourls.db", "must begin with mysql://, mariadb://"),
        ("mysql://u@db.example", "names no database"),
        ("not a url", "is not a URL"),
    ):
        with pytest.raises(SourceError, match=why):
            source(url)


def test_private_addresses_only_when_allowed() -> None:
    kind = KINDS["yourls"]
    for host in ("127.0.0.1", "localhost", "LocalHost.", "10.1.2.3", "[::1]", "169.254.169.254"):
        settings = kind.settings.model_validate({"database_url": f"mysql://u@{host}/y"})
        with pytest.raises(SourceError, match=r"^the database at .* may not be reached: "):
            kind.open(Opening(settings=settings, allow_private=False))
    # A public address passes when opened; a name is resolved and checked when connected.
    settings = kind.settings.model_validate({"database_url": "mysql://u@93.184.215.14/y"})
    kind.open(Opening(settings=settings, allow_private=False))


def test_settings_it_refuses() -> None:
    kind = KINDS["yourls"]
    for wrong in (
        {"database_url": "mysql://u@h/y", "timezone": "Mars/Olympus"},
        {"database_url": "mysql://u@h/y", "table_prefix": "x; DROP"},
        {},
    ):
        with pytest.raises(ValidationError):
            kind.settings.model_validate(wrong)
    secret = kind.settings.model_validate({"database_url": "mysql://u:hunter2@h/y"})
    assert "hunter2" not in repr(secret)
