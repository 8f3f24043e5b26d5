"""A click to record, and what the click tables hold, read back in order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from kurz.analytics.events import ClickEvent, click_event, decode
from kurz.db import Database
from kurz.db.tables import click_batches, link_clicks_daily, link_clicks_hourly

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
    return click_event(**fields)


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


async def logged(db: Database) -> list[ClickEvent]:
    """The click log: every event of every batch still holding its events."""
    async with db.read() as conn:
        result = await conn.execute(
            sa.select(click_batches.c.events)
            .where(click_batches.c.events.is_not(None))
            .order_by(click_batches.c.id)
        )
        return [event for (events,) in result for event in decode(events)]


async def hourly(db: Database) -> list[tuple[Any, ...]]:
    return await rows(db, link_clicks_hourly, "link_id", "hour", "clicks", "bot_clicks", "uniques")


async def daily(db: Database) -> list[tuple[Any, ...]]:
    return await rows(db, link_clicks_daily, "link_id", "day", "clicks", "bot_clicks", "uniques")
