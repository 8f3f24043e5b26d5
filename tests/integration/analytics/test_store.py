"""Recording clicks: exact under redelivery, bots apart, uniques exact per hour and
per day, the purge; on both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from kurz.analytics.events import ClickEvent
from kurz.analytics.queue import batch_id
from kurz.analytics.store import ClickStore, VisitorMemory, record
from kurz.db import Database
from kurz.db.tables import (
    click_batches,
    click_events,
    link_breakdowns_daily,
    link_clicks_daily,
    link_clicks_hourly,
    link_visitors_hourly,
)

HOUR = 1_767_229_200.0  # 2026-01-01 01:00 UTC
DAY = 1_767_225_600.0  # 2026-01-01 00:00 UTC


def click(*, link: int = 1, at: float = HOUR, visitor: str = "v1", **extra: Any) -> ClickEvent:
    fields: dict[str, Any] = {
        "link_id": link,
        "at": at,
        "referrer_host": "news.example",
        "browser": "Firefox",
        "os": "Linux",
        "device": "desktop",
        "bot": False,
        "country": None,
        "visitor": visitor,
        **extra,
    }
    return ClickEvent(**fields)


def utc(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


async def rows(db: Database, table: sa.Table, *columns: str) -> list[tuple[Any, ...]]:
    async with db.read() as conn:
        result = await conn.execute(
            sa.select(*(table.c[name] for name in columns)).order_by(
                *(table.c[name] for name in columns)
            )
        )
        return [tuple(row) for row in result]


async def hourly(db: Database) -> list[tuple[Any, ...]]:
    return await rows(db, link_clicks_hourly, "link_id", "hour", "clicks", "bot_clicks", "uniques")


async def daily(db: Database) -> list[tuple[Any, ...]]:
    return await rows(db, link_clicks_daily, "link_id", "day", "clicks", "bot_clicks", "uniques")


async def test_a_batch_delivered_again_is_not_counted_again(db: Database) -> None:
    store = ClickStore(db)
    first = (batch_id(), [click(visitor=f"v{i % 3}") for i in range(10)])
    assert await store.record([first]) == 10
    assert await store.record([first]) == 0
    # Delivered again together with a new batch: only the new one counts.
    second = (batch_id(), [click(visitor=f"v{i}") for i in range(5)])
    assert await store.record([first, second]) == 5
    assert await hourly(db) == [(1, utc(HOUR), 15, 0, 5)]
    assert await daily(db) == [(1, utc(DAY), 15, 0, 5)]
    assert len(await rows(db, click_events, "id")) == 15
    assert len(await rows(db, click_batches, "id")) == 2


async def test_a_rolled_back_batch_can_be_recorded_later(db: Database) -> None:
    batch = (batch_id(), [click()])

    class Abort(Exception):
        pass

    async def record_then_fail() -> None:
        async with db.write() as conn:
            await record(conn, [batch])
            raise Abort

    with pytest.raises(Abort):
        await record_then_fail()
    assert await hourly(db) == []
    assert await ClickStore(db).record([batch]) == 1
    assert await hourly(db) == [(1, utc(HOUR), 1, 0, 1)]


async def test_bots_are_counted_apart_and_not_as_visitors(db: Database) -> None:
    events = [
        click(),
        click(bot=True, browser="Googlebot", device="bot", visitor="g"),
        click(visitor="v2", referrer_host=None, country="DE"),
    ]
    await ClickStore(db).record([(batch_id(), events)])
    assert await hourly(db) == [(1, utc(HOUR), 2, 1, 2)]
    breakdown = {
        (dimension, value): n
        for dimension, value, n in await rows(
            db, link_breakdowns_daily, "dimension", "value", "clicks"
        )
    }
    assert breakdown == {
        ("bot", "Googlebot"): 1,
        ("browser", "Firefox"): 2,
        ("os", "Linux"): 2,
        ("device", "desktop"): 2,
        ("referrer", "news.example"): 1,
        ("referrer", "(direct)"): 1,
        ("country", "(unknown)"): 1,
        ("country", "DE"): 1,
    }


async def test_uniques_are_exact_per_hour_and_per_day(db: Database) -> None:
    store = ClickStore(db)
    later = HOUR + 3_600
    await store.record([(batch_id(), [click(visitor="a"), click(visitor="a", at=later)])])
    # "a" again in the first hour: no new unique; "b" is one; another link apart.
    await store.record(
        [(batch_id(), [click(visitor="a"), click(visitor="b", at=later), click(link=2)])]
    )
    assert await hourly(db) == [
        (1, utc(HOUR), 2, 0, 1),
        (1, utc(later), 2, 0, 2),
        (2, utc(HOUR), 1, 0, 1),
    ]
    # "a" came in two hours and is one visitor of the day.
    assert await daily(db) == [(1, utc(DAY), 4, 0, 2), (2, utc(DAY), 1, 0, 1)]


@pytest.mark.parametrize("remembered", [True, False])
async def test_two_stores_sharing_a_database_count_a_visitor_once(
    db: Database, remembered: bool
) -> None:
    # Two processes: what one has recorded, the other's memory does not know.
    first = ClickStore(db)
    second = ClickStore(db, memory=VisitorMemory() if remembered else VisitorMemory(1))
    await first.record([(batch_id(), [click(visitor="a")])])
    await second.record([(batch_id(), [click(visitor="a"), click(visitor="b")])])
    await first.record([(batch_id(), [click(visitor="a"), click(visitor="b")])])
    assert await hourly(db) == [(1, utc(HOUR), 5, 0, 2)]
    assert await daily(db) == [(1, utc(DAY), 5, 0, 2)]


async def test_the_purge_deletes_old_events_batches_and_visitor_sets(db: Database) -> None:
    store = ClickStore(db)
    old, young = HOUR - 40 * 86_400, HOUR
    for at in (old, old + 1, young):
        await store.record([(batch_id(at=at), [click(at=at, visitor=str(at))])])
    # A late event: older than the cutoff but recorded after a young one.
    await store.record([(batch_id(at=young), [click(at=old + 2, visitor="late")])])
    purged = await store.purge(now=HOUR + 60, retention=30 * 86_400, chunk=2)
    assert purged == 3
    assert [at for (at,) in await rows(db, click_events, "at")] == [utc(young)]
    # Batch ids of 40 days ago are forgotten, today's kept.
    assert len(await rows(db, click_batches, "id")) == 2
    assert [hour for (hour,) in await rows(db, link_visitors_hourly, "hour")] == [utc(young)]
    # The rollups are kept.
    assert len(await hourly(db)) == 2
