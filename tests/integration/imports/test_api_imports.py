"""Whole imports from the API sources (Bitly, Kutt, Shlink), run by the import engine
against their local stand-ins, on SQLite and PostgreSQL: the links made, their clicks,
what is reported, and a second run that makes nothing new."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from kurz.bootstrap import Parts
from kurz.db.tables import imports, link_clicks_daily, link_clicks_total, links
from kurz.imports.kinds import KINDS
from kurz.imports.service import Imports
from tests.integration.imports.apifakes import (
    BITLY_TOKEN,
    KUTT_KEY,
    SHLINK_KEY,
    FakeBitly,
    FakeKutt,
    FakeShlink,
    bitlink,
    link,
    short_url,
)
from tests.integration.imports.apiserver import serving
from tests.integration.imports.support import user


@pytest.fixture
def parts(app: FastAPI) -> Parts:
    found = app.state.kurz
    assert isinstance(found, Parts)
    return found


def engine(parts: Parts) -> Imports:
    """The parts' Imports, allowed to reach the stand-ins on 127.0.0.1."""
    return Imports(
        db=parts.db,
        jobs=parts.jobs,
        clock=parts.clock,
        links=parts.links,
        outbox=parts.outbox,
        max_bytes=1 << 20,
        allow_private=True,
        kinds=KINDS,
    )


async def stored(parts: Parts) -> list[tuple[Any, ...]]:
    async with parts.db.read() as conn:
        found = await conn.execute(
            sa.select(
                links.c.code, links.c.url, links.c.expires_at, links.c.max_visits, links.c.visits
            ).order_by(links.c.id)
        )
        return [tuple(row) for row in found]


async def clicks(parts: Parts) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    async with parts.db.read() as conn:
        daily = await conn.execute(
            sa.select(links.c.code, link_clicks_daily.c.day, link_clicks_daily.c.clicks)
            .join(links, links.c.id == link_clicks_daily.c.link_id)
            .order_by(links.c.code, link_clicks_daily.c.day)
        )
        total = await conn.execute(
            sa.select(links.c.code, link_clicks_total.c.clicks)
            .join(links, links.c.id == link_clicks_total.c.link_id)
            .order_by(links.c.code)
        )
        return [tuple(row) for row in daily], [tuple(row) for row in total]


async def imported(parts: Parts, kind: str, settings: dict[str, Any]) -> Any:
    alice = await user(parts.db, parts.clock, "alice@example.com")
    imports_ = engine(parts)
    started = await imports_.start(principal=alice, kind=kind, settings=settings, enqueue=False)
    done = await imports_.run(started.id)
    again = await imports_.start(principal=alice, kind=kind, settings=settings, enqueue=False)
    second = await imports_.run(again.id)
    assert (second.status, second.imported, second.clicks) == ("finished", 0, 0)
    assert second.skipped == done.imported
    async with parts.db.read() as conn:
        kept = await conn.execute(sa.select(imports.c.settings).order_by(imports.c.id))
        # A token is kept only while its import runs.
        assert kept.scalars().all() == [None, None]
    return done


async def test_a_bitly_import_brings_the_links_and_their_clicks_per_day(parts: Parts) -> None:
    bitlinks = [
        bitlink("bit.ly/3aB1", "https://example.com/one"),
        bitlink("bit.ly/3aB2", "https://example.com/two", custom_bitlinks=["bit.ly/sale"]),
        bitlink("go.brand.co/4cD5", "https://example.com/four"),
    ]
    days = {
        "bit.ly/3aB1": [
            {"date": "2024-05-02T00:00:00+0000", "clicks": 3},
            {"date": "2024-05-01T00:00:00+0000", "clicks": 5},
        ],
        "go.brand.co/4cD5": [{"date": "2024-05-01T00:00:00+0000", "clicks": 9}],
    }
    async with serving(FakeBitly(bitlinks, days)) as server:
        settings = {"token": BITLY_TOKEN, "api_url": f"{server.url}/v4"}
        done = await imported(parts, "bitly", settings)
    # kurz serves no go.brand.co: that link fails, and its clicks go nowhere.
    assert (done.status, done.total, done.read) == ("finished", 3, 3)
    assert (done.imported, done.failed, done.clicks) == (2, 1, 8)
    assert [row[:2] for row in await stored(parts)] == [
        ("3aB1", "https://example.com/one"),
        ("sale", "https://example.com/two"),
    ]
    assert await clicks(parts) == (
        [
            ("3aB1", datetime(2024, 5, 1, tzinfo=UTC), 5),
            ("3aB1", datetime(2024, 5, 2, tzinfo=UTC), 3),
        ],
        [("3aB1", 8)],
    )


async def test_a_kutt_import_brings_the_links_and_their_totals(parts: Parts) -> None:
    kutt_links = [
        link(3, address="third", visit_count=4, expire_in="2030-06-01 12:00:00"),
        link(2, address="second", password=True),
        # Kurz's aliases have three characters or more.
        link(1, address="a1"),
    ]
    async with serving(FakeKutt(kutt_links)) as server:
        settings = {"api_url": server.url, "api_key": KUTT_KEY}
        done = await imported(parts, "kutt-api", settings)
    assert (done.status, done.total, done.read) == ("finished", 3, 3)
    assert (done.imported, done.failed, done.clicks) == (1, 2, 4)
    assert await stored(parts) == [
        ("third", "https://example.com/3", datetime(2030, 6, 1, 12, tzinfo=UTC), None, 0),
    ]
    assert await clicks(parts) == ([], [("third", 4)])


async def test_a_shlink_import_brings_the_urls_and_their_totals(parts: Parts) -> None:
    urls = [
        short_url(
            "first",
            "https://example.com/1",
            meta={"validSince": None, "validUntil": None, "maxVisits": 100},
            visitsSummary={"total": 30, "nonBots": 25, "bots": 5},
        ),
        short_url("second", "https://example.com/2"),
    ]
    async with serving(FakeShlink(urls)) as server:
        settings = {"api_url": server.url, "api_key": SHLINK_KEY}
        done = await imported(parts, "shlink", settings)
    assert (done.status, done.total, done.read) == ("finished", 2, 2)
    assert (done.imported, done.failed, done.clicks) == (2, 0, 25)
    assert await stored(parts) == [
        # The cap goes on where it was: 30 of its 100 visits used.
        ("first", "https://example.com/1", None, 100, 30),
        ("second", "https://example.com/2", None, None, 0),
    ]
    assert await clicks(parts) == ([], [("first", 25)])


async def test_a_refused_token_fails_the_import_saying_so(parts: Parts) -> None:
    alice = await user(parts.db, parts.clock, "alice@example.com")
    imports_ = engine(parts)
    async with serving(FakeShlink([])) as server:
        started = await imports_.start(
            principal=alice,
            kind="shlink",
            settings={"api_url": server.url, "api_key": "wrong"},
            enqueue=False,
        )
        done = await imports_.run(started.id)
    assert (done.status, done.error) == (
        "failed",
        "Shlink answered HTTP 401: the API key was refused "
        "(Provided API key does not exist or is invalid.)",
    )
