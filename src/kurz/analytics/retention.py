"""Forgetting clicks past keeping: old raw events, old batch ids, old visitor sets.

The rollups are kept for good; what goes is what only recording needs (batch ids
and visitor sets, for exact counts under redelivery and late clicks) and the click
log once it is older than the configured retention.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from kurz.analytics.counting import DAY
from kurz.analytics.queue import batch_prefix
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import click_batches, link_visitors_daily, link_visitors_hourly

# How long a batch id is remembered: a batch delivered again later than this would
# count twice. Stream entries are claimed from a dead consumer within seconds
# (kurz.analytics.stream), so this is a week of every consumer being down at once.
BATCH_MEMORY = 7 * DAY
# How long the visitor sets are kept: a click arriving later than this for its hour
# would count its visitor as new.
VISITOR_MEMORY = 2 * DAY


async def purge(*, db: Database, now: float, retention: float, chunk: int = 100) -> int:
    """Forget what is past keeping; how many batches' raw events went.

    - The click log: events older than `retention` seconds.
    - Batch ids: older than BATCH_MEMORY. A batch's row goes whole once both its
      events and its id are past use; while only its events are (a retention
      shorter than BATCH_MEMORY), they are set to NULL and its id stays.
    - Visitor sets: older than VISITOR_MEMORY.

    In transactions of up to `chunk` batches (each of up to 50,000 events), so that
    recording goes on meanwhile. Ids begin with their batch's time in hex: every id
    below a time's prefix is older, and each purge is a range of the key.
    """
    purged = await _delete_batches(db, batch_prefix(now - max(retention, BATCH_MEMORY)), chunk)
    if retention < BATCH_MEMORY:
        purged += await _drop_events(db, batch_prefix(now - retention), chunk)
    async with db.write(READ_COMMITTED) as conn:
        past = datetime.fromtimestamp(now - VISITOR_MEMORY, UTC)
        await conn.execute(
            sa.delete(link_visitors_hourly).where(link_visitors_hourly.c.hour < past)
        )
        await conn.execute(sa.delete(link_visitors_daily).where(link_visitors_daily.c.day < past))
    return purged


async def _delete_batches(db: Database, below: str, chunk: int) -> int:
    """Delete the batches whose ids are below `below`; how many still had events."""
    batches = click_batches.c
    purged = 0
    while True:
        async with db.write(READ_COMMITTED) as conn:
            query = (
                sa.select(batches.id, batches.events.is_not(None))
                .where(batches.id < below)
                .order_by(batches.id)
                .limit(chunk)
            )
            rows = (await conn.execute(query)).all()
            if rows:
                await conn.execute(sa.delete(click_batches).where(batches.id <= rows[-1][0]))
        purged += sum(1 for _, logged in rows if logged)
        if len(rows) < chunk:
            return purged


async def _drop_events(db: Database, below: str, chunk: int) -> int:
    """Drop the events of the batches whose ids are below `below`, keeping the ids."""
    batches = click_batches.c
    purged, after = 0, ""
    while True:
        async with db.write(READ_COMMITTED) as conn:
            query = (
                sa.select(batches.id)
                .where(batches.id > after, batches.id < below, batches.events.is_not(None))
                .order_by(batches.id)
                .limit(chunk)
            )
            ids = (await conn.execute(query)).scalars().all()
            if ids:
                after = ids[-1]
                update = sa.update(click_batches).where(batches.id.in_(ids))
                await conn.execute(update.values(events=None))
        purged += len(ids)
        if len(ids) < chunk:
            return purged
