"""Background work on links: retiring links that expired long ago (docs/jobs.md).

The policy (README, "Expired links"): an expired link answers 410 for
`KURZ_EXPIRED_LINK_GRACE` seconds after its expiry (30 days), so that visitors learn
it expired rather than that it never existed. Then it is retired: deleted as the API
deletes (the row stays with `deleted_at` set, so its code is never handed out again)
and from then on answers 404 and leaves the listings.

Expiries are also announced as they happen (`announce_expired`, every minute): each
link whose expiry passed since the last sweep is told to the LinkEvents (webhooks'
link.expired), in the transaction that moves the sweep's mark past it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import link_sweeps, links
from kurz.jobs import Registry
from kurz.links.cache import Targets
from kurz.links.codes import cache_key
from kurz.links.service import LinkEvents, NoEvents
from kurz.types import Clock

BATCH = 1_000
EXPIRIES = "link-expiries"


async def retire_expired(
    *,
    db: Database,
    clock: Clock,
    grace: float,
    retired: Callable[[list[str]], Awaitable[None]] | None = None,
    events: LinkEvents | None = None,
) -> int:
    """Retire links expired more than `grace` seconds ago, a batch per transaction.

    `retired` hears each batch's cache keys after it commits (to drop them from caches).
    Safe to run twice, or on two workers at once: a retired link is not picked again.
    """
    total = 0
    while True:
        now = utcnow(clock)
        due = (
            sa.select(links.c.id)
            .where(
                links.c.deleted_at.is_(None), links.c.expires_at < now - timedelta(seconds=grace)
            )
            .limit(BATCH)
        )
        async with db.write(READ_COMMITTED) as conn:
            rows = await conn.execute(
                sa.update(links)
                .where(links.c.id.in_(due.scalar_subquery()), links.c.deleted_at.is_(None))
                .values(deleted_at=now, updated_at=now, version=links.c.version + 1)
                .returning(links.c.domain_id, links.c.code)
            )
            codes = [cache_key(row.domain_id, row.code) for row in rows]
            # Deleted as the API deletes: told as such, in the same transaction.
            await (events or NoEvents()).changed(conn, event="link.deleted", keys=codes)
        total += len(codes)
        if codes and retired is not None:
            await retired(codes)
        if len(codes) < BATCH:
            return total


async def _mark(conn: AsyncConnection, now: datetime) -> tuple[datetime, int]:
    """Where the expiry sweep has got to, locked until the caller commits. The first
    sweep starts from now: expiries before kurz had webhooks are not announced."""
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(
        link_sweeps
    )
    await conn.execute(
        insert.values(name=EXPIRIES, at=now, link_id=0).on_conflict_do_nothing(
            index_elements=[link_sweeps.c.name]
        )
    )
    row = (
        await conn.execute(
            sa.select(link_sweeps.c.at, link_sweeps.c.link_id)
            .where(link_sweeps.c.name == EXPIRIES)
            .with_for_update()
        )
    ).one()
    return row.at, row.link_id


async def announce_expired(*, db: Database, clock: Clock, events: LinkEvents) -> int:
    """Tell `events` of each live link whose expiry passed since the last sweep, a batch
    per transaction, in (expires_at, id) order; the number told.

    The mark moves in the transaction that tells, so a link is told once however many
    workers sweep, and a sweep that fails tells nothing and moves nothing. A link whose
    expiry is moved later is told again when it passes; one moved into the past, behind
    the mark, is not (its change was told as link.updated).
    """
    total = 0
    while True:
        now = utcnow(clock)
        async with db.write(READ_COMMITTED) as conn:
            at, last_id = await _mark(conn, now)
            after = sa.or_(
                links.c.expires_at > at, sa.and_(links.c.expires_at == at, links.c.id > last_id)
            )
            rows = (
                await conn.execute(
                    sa.select(links.c.id, links.c.domain_id, links.c.code, links.c.expires_at)
                    .where(links.c.deleted_at.is_(None), after, links.c.expires_at <= now)
                    .order_by(links.c.expires_at, links.c.id)
                    .limit(BATCH)
                )
            ).all()
            if rows:
                keys = [cache_key(row.domain_id, row.code) for row in rows]
                await events.changed(conn, event="link.expired", keys=keys)
                moved_to: tuple[datetime, int] = (rows[-1].expires_at, rows[-1].id)
            else:
                moved_to = (now, 0) if now > at else (at, last_id)
            await conn.execute(
                sa.update(link_sweeps)
                .where(link_sweeps.c.name == EXPIRIES)
                .values(at=moved_to[0], link_id=moved_to[1])
            )
        total += len(rows)
        if len(rows) < BATCH:
            return total


def register(
    registry: Registry,
    *,
    db: Database,
    clock: Clock,
    targets: Targets,
    grace: float,
    events: LinkEvents | None = None,
) -> None:
    """Retire expired links every hour, and drop them from every cache tier; with
    `events`, announce expiries every minute."""

    @registry.job("retire-expired-links", timeout=1_800.0)
    async def retire_expired_links(_payload: dict[str, Any]) -> None:
        async def retired(codes: list[str]) -> None:
            for code in codes:
                await targets.changed(code)

        await retire_expired(db=db, clock=clock, grace=grace, retired=retired, events=events)

    registry.every("retire-expired-links", 3_600.0, "retire-expired-links")
    if events is None:
        return
    told = events

    @registry.job("announce-expired-links", timeout=600.0)
    async def announce_expired_links(_payload: dict[str, Any]) -> None:
        await announce_expired(db=db, clock=clock, events=told)

    registry.every("announce-expired-links", 60.0, "announce-expired-links")
