"""The visitor salts every kurz process shares: one random salt per UTC day, in the
database, made before its day begins and deleted when it is over."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from kurz.analytics.events import DailySalt
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import visitor_salts
from kurz.types import Clock

log = logging.getLogger("kurz.analytics")

_DAY = 86_400
# Often enough that tomorrow's salt is known many hours before midnight.
REFRESH_EVERY = 3_600.0


async def share_salts(db: Database, salt: DailySalt, clock: Clock) -> None:
    """Make today's and tomorrow's salts (the first process to ask makes them; the
    rest read them), give them to `salt`, and delete the days that are over."""
    today = int(clock() // _DAY)
    days = (today, today + 1)
    insert = sqlite.insert if db.is_sqlite else postgresql.insert
    async with db.write(READ_COMMITTED) as conn:
        await conn.execute(
            insert(visitor_salts).on_conflict_do_nothing(),
            [{"day": day, "salt": secrets.token_bytes(32)} for day in days],
        )
        rows = await conn.execute(
            sa.select(visitor_salts.c.day, visitor_salts.c.salt).where(
                visitor_salts.c.day.in_(days)
            )
        )
        shared = {row.day: bytes(row.salt) for row in rows}
        await conn.execute(sa.delete(visitor_salts).where(visitor_salts.c.day < today))
    salt.share(shared)


class SaltKeeper:
    """Shares the salts at start, then every hour, in the background."""

    def __init__(self, db: Database, salt: DailySalt, clock: Clock) -> None:
        self._db = db
        self._salt = salt
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:
            await share_salts(self._db, self._salt, self._clock)
        except Exception:
            # Counting goes on with a salt of this process's own (DailySalt says so).
            log.exception("could not share the visitor salts; trying again in an hour")
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_EVERY)
            try:
                await share_salts(self._db, self._salt, self._clock)
            except Exception:
                log.exception("could not share the visitor salts; trying again in an hour")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
