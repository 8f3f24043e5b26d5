"""Recording a batch of clicks: raw events and their rollups, in one transaction.

The batch is written exactly once however often it is delivered. Events are
inserted with ON CONFLICT DO NOTHING on their random id, and only the events that
were new count towards the rollups, in the same transaction. At-least-once delivery
(a retried write, a redelivered stream entry) therefore gives exact counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.analytics.events import ClickEvent
from kurz.db.tables import click_events, link_clicks_daily, link_clicks_hourly, link_visitors_hourly

# The breakdowns kept per link and day.
DIMENSIONS = ("referrer", "browser", "os", "device", "country", "bot")
# Bound parameters per statement stay under SQLite's limit (32,766) at this many rows.
_CHUNK = 2_000


def _hour(at: float) -> datetime:
    return datetime.fromtimestamp(at - at % 3600, UTC)


def _day(at: float) -> datetime:
    return datetime.fromtimestamp(at - at % 86_400, UTC)


def _dimensions(event: ClickEvent) -> list[tuple[str, str]]:
    if event.bot:
        return [("bot", event.browser)]
    return [
        ("referrer", event.referrer_host or "(direct)"),
        ("browser", event.browser),
        ("os", event.os),
        ("device", event.device),
        ("country", event.country or "(unknown)"),
    ]


async def record(conn: AsyncConnection, events: Sequence[ClickEvent]) -> int:
    """Write `events` and their rollups in the caller's transaction; how many were new."""
    if not events:
        return 0
    insert = sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert
    new: set[str] = set()
    for start in range(0, len(events), _CHUNK):
        chunk = events[start : start + _CHUNK]
        rows = [
            {
                "event_id": e.event_id,
                "link_id": e.link_id,
                "at": datetime.fromtimestamp(e.at, UTC),
                "referrer_host": e.referrer_host,
                "browser": e.browser,
                "os": e.os,
                "device": e.device,
                "bot": e.bot,
                "country": e.country,
                "visitor": e.visitor,
            }
            for e in chunk
        ]
        added = await conn.execute(
            insert(click_events)
            .on_conflict_do_nothing(index_elements=[click_events.c.event_id])
            .returning(click_events.c.event_id),
            rows,
        )
        new.update(row.event_id for row in added)
    fresh = [e for e in events if e.event_id in new]
    if not fresh:
        return 0

    clicks: Counter[tuple[int, datetime]] = Counter()
    bots: Counter[tuple[int, datetime]] = Counter()
    visitors: set[tuple[int, datetime, str]] = set()
    daily: Counter[tuple[int, datetime, str, str]] = Counter()
    for e in fresh:
        hour = _hour(e.at)
        if e.bot:
            bots[e.link_id, hour] += 1
        else:
            clicks[e.link_id, hour] += 1
            visitors.add((e.link_id, hour, e.visitor))
        day = _day(e.at)
        for dimension, value in _dimensions(e):
            daily[e.link_id, day, dimension, value[:255]] += 1

    uniques: Counter[tuple[int, datetime]] = Counter()
    seen = [{"link_id": link, "hour": hour, "visitor": v} for link, hour, v in visitors]
    for start in range(0, len(seen), _CHUNK):
        first = await conn.execute(
            insert(link_visitors_hourly)
            .on_conflict_do_nothing()
            .returning(link_visitors_hourly.c.link_id, link_visitors_hourly.c.hour),
            seen[start : start + _CHUNK],
        )
        for row in first:
            uniques[row.link_id, _as_utc(row.hour)] += 1

    hourly = [
        {
            "link_id": link,
            "hour": hour,
            "clicks": clicks[link, hour],
            "bot_clicks": bots[link, hour],
            "uniques": uniques[link, hour],
        }
        for link, hour in clicks.keys() | bots.keys()
    ]
    await _add(conn, insert, link_clicks_hourly, hourly, ("clicks", "bot_clicks", "uniques"))
    rows = [
        {"link_id": link, "day": day, "dimension": d, "value": value, "clicks": n}
        for (link, day, d, value), n in daily.items()
    ]
    await _add(conn, insert, link_clicks_daily, rows, ("clicks",))
    return len(fresh)


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def _add(
    conn: AsyncConnection,
    insert: Any,
    table: sa.Table,
    rows: list[dict[str, Any]],
    counters: tuple[str, ...],
) -> None:
    """Insert rows, or add their counters to the rows already there (one upsert)."""
    keys = list(table.primary_key.columns)
    for start in range(0, len(rows), _CHUNK):
        statement = insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=keys,
            set_={name: table.c[name] + statement.excluded[name] for name in counters},
        )
        await conn.execute(statement, rows[start : start + _CHUNK])
