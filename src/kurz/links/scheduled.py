"""Background work on links: retiring links that expired long ago (docs/jobs.md).

The policy (README, "Expired links"): an expired link answers 410 for
`KURZ_EXPIRED_LINK_GRACE` seconds after its expiry (30 days), so that visitors learn
it expired rather than that it never existed. Then it is retired: deleted as the API
deletes (the row stays with `deleted_at` set, so its code is never handed out again)
and from then on answers 404 and leaves the listings.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import links
from kurz.jobs import Registry
from kurz.links.cache import Targets
from kurz.links.codes import cache_key
from kurz.types import Clock

BATCH = 1_000


async def retire_expired(
    *,
    db: Database,
    clock: Clock,
    grace: float,
    retired: Callable[[list[str]], Awaitable[None]] | None = None,
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
        total += len(codes)
        if codes and retired is not None:
            await retired(codes)
        if len(codes) < BATCH:
            return total


def register(
    registry: Registry, *, db: Database, clock: Clock, targets: Targets, grace: float
) -> None:
    """Retire expired links every hour, and drop them from every cache tier."""

    @registry.job("retire-expired-links", timeout=1_800.0)
    async def retire_expired_links(_payload: dict[str, Any]) -> None:
        async def retired(codes: list[str]) -> None:
            for code in codes:
                await targets.changed(code)

        await retire_expired(db=db, clock=clock, grace=grace, retired=retired)

    registry.every("retire-expired-links", 3_600.0, "retire-expired-links")
