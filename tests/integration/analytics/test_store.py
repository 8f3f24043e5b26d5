"""Recording clicks: rollups exact under redelivery, bots apart, uniques exact; both databases."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from kurz.analytics.events import ClickEvent
from kurz.analytics.store import record
from kurz.db import Database
from kurz.db.tables import link_clicks_daily, link_clicks_hourly

HOUR = 1_767_229_200.0  # 2026-01-01 01:00 UTC


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database.from_url(database_url)
    yield database
    await database.dispose()


def click(
    n: int, *, link: int = 1, at: float = HOUR, visitor: str = "v1", **extra: object
) -> ClickEvent:
    fields: dict[str, object] = {
        "event_id": f"e{n:031d}",
        "link_id": link,
        "code": "abc",
        "at": at,
        "referrer_host": "news.example",
        "browser": "Firefox",
        "os": "Linux",
        "device": "desktop",
        "bot": False,
        "country": None,
        "visitor": visitor,
    }
    fields.update(extra)
    names = {f.name for f in dataclasses.fields(ClickEvent)}
    return ClickEvent(**{k: v for k, v in fields.items() if k in names})  # type: ignore[arg-type]


async def hourly(db: Database) -> list[tuple[int, datetime, int, int, int]]:
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(
                link_clicks_hourly.c.link_id,
                link_clicks_hourly.c.hour,
                link_clicks_hourly.c.clicks,
                link_clicks_hourly.c.bot_clicks,
                link_clicks_hourly.c.uniques,
            ).order_by(link_clicks_hourly.c.link_id, link_clicks_hourly.c.hour)
        )
        return [tuple(row) for row in rows]


async def test_a_batch_delivered_twice_counts_once(db: Database) -> None:
    batch = [click(i, visitor=f"v{i % 3}") for i in range(10)]
    async with db.write() as conn:
        assert await record(conn, batch) == 10
    async with db.write() as conn:
        assert await record(conn, batch) == 0
    # Half old, half new: only the new count.
    async with db.write() as conn:
        assert await record(conn, batch[5:] + [click(i) for i in range(10, 15)]) == 5
    hour = datetime.fromtimestamp(HOUR, UTC)
    assert await hourly(db) == [(1, hour, 15, 0, 3)]


async def test_bots_are_counted_apart_and_not_as_visitors(db: Database) -> None:
    events = [
        click(0),
        click(1, bot=True, browser="Googlebot", device="bot"),
        click(2, visitor="v2"),
    ]
    async with db.write() as conn:
        await record(conn, events)
    hour = datetime.fromtimestamp(HOUR, UTC)
    assert await hourly(db) == [(1, hour, 2, 1, 2)]
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(
                link_clicks_daily.c.dimension, link_clicks_daily.c.value, link_clicks_daily.c.clicks
            ).order_by(link_clicks_daily.c.dimension, link_clicks_daily.c.value)
        )
        daily = {(d, v): n for d, v, n in rows}
    assert daily[("bot", "Googlebot")] == 1
    assert daily[("browser", "Firefox")] == 2
    assert daily[("referrer", "news.example")] == 2
    assert daily[("country", "(unknown)")] == 2


async def test_hours_links_and_uniques_across_batches(db: Database) -> None:
    async with db.write() as conn:
        await record(conn, [click(0, visitor="a"), click(1, visitor="a", at=HOUR + 3_600)])
    async with db.write() as conn:
        # "a" again in the first hour: no new unique; "b" is one; another link apart.
        await record(conn, [click(2, visitor="a"), click(3, visitor="b"), click(4, link=2)])
    first, second = (datetime.fromtimestamp(t, UTC) for t in (HOUR, HOUR + 3_600))
    assert await hourly(db) == [(1, first, 3, 0, 2), (1, second, 1, 0, 1), (2, first, 1, 0, 1)]
