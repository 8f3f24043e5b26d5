"""Recording clicks: exact under redelivery, bots apart, uniques exact per hour and
per day; on both databases."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from kurz.analytics import pacing
from kurz.analytics.events import ClickEvent
from kurz.analytics.pacing import SLICE
from kurz.analytics.queue import batch_id
from kurz.analytics.store import ClickStore, VisitorMemory, record
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import (
    click_batches,
    link_breakdowns_daily,
)
from tests.integration.analytics.recorded import (
    DAY,
    HOUR,
    click,
    daily,
    hourly,
    logged,
    rows,
    utc,
)


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
    assert len(await logged(db)) == 15
    assert len(await rows(db, click_batches, "id")) == 2


async def test_a_rolled_back_batch_can_be_recorded_later(db: Database) -> None:
    batch = (batch_id(), [click()])

    class Abort(Exception):
        pass

    async def record_then_fail() -> None:
        async with db.write(READ_COMMITTED) as conn:
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


async def test_the_click_log_holds_each_event_once_as_it_was_queued(db: Database) -> None:
    events = [
        click(at=HOUR + 0.123456, referrer_host=None, country="DE"),
        click(link=2, bot=True, browser="Googlebot", device="bot", visitor="g"),
    ]
    store = ClickStore(db)
    batch = (batch_id(), events)
    await store.record([batch])
    await store.record([batch])
    assert await logged(db) == events


async def test_the_click_events_view_shows_the_log_a_row_per_event(db: Database) -> None:
    events = [click(at=HOUR + 0.25, country="DE"), click(link=2, at=HOUR + 1.5, visitor="v2")]
    ident = batch_id()
    await ClickStore(db).record([(ident, events)])
    async with db.read() as conn:
        result = await conn.exec_driver_sql(
            "SELECT batch_id, link_id, at, referrer_host, browser, os, device, bot, country, "
            "visitor FROM click_events ORDER BY link_id"
        )
        shown = [tuple(row) for row in result]
    # SQLite shows the time as text to the millisecond and a boolean as 0 or 1.
    first_at: Any = "2026-01-01 01:00:00.250" if db.is_sqlite else utc(HOUR + 0.25)
    second_at: Any = "2026-01-01 01:00:01.500" if db.is_sqlite else utc(HOUR + 1.5)
    assert shown == [
        (ident, 1, first_at, "news.example", "Firefox", "Linux", "desktop", False, "DE", "v1"),
        (ident, 2, second_at, "news.example", "Firefox", "Linux", "desktop", False, None, "v2"),
    ]


async def test_a_large_batch_is_recorded_a_slice_at_a_time(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between slices the event loop answers redirects when due: with no time to
    spare, no turn of it reads (to count or to log) more than a slice of the batch."""
    monkeypatch.setattr(pacing, "TURN", 0.0)
    turn = 0
    read_in: Counter[int] = Counter()

    class Watched(tuple[Any, ...]):
        """A ClickEvent that tells in which turn of the event loop it is read."""

        def __iter__(self) -> Iterator[Any]:
            read_in[turn] += 1
            return super().__iter__()

    async def tick() -> None:
        nonlocal turn
        while True:
            await asyncio.sleep(0)
            turn += 1

    events: list[ClickEvent] = [
        Watched(click(link=i % 100 + 1, visitor=f"v{i}")) for i in range(10 * SLICE)
    ]
    ticker = asyncio.create_task(tick())
    try:
        assert await ClickStore(db).record([(batch_id(), events)]) == len(events)
    finally:
        ticker.cancel()
    assert sum(read_in.values()) >= len(events)
    assert max(read_in.values()) <= SLICE
    assert len(await logged(db)) == len(events)
    assert sum(row[2] for row in await hourly(db)) == len(events)
