"""Wake idle workers when a job is enqueued: PostgreSQL's LISTEN/NOTIFY, else polling.

An enqueue NOTIFYs in its own transaction, so the wake-up is delivered at commit and
only if it commits. Each store keeps one listening connection, opened on the first
wait; SQLite has no such channel, and a listener that cannot connect falls back to
polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.db import Database

log = logging.getLogger("kurz.jobs")

CHANNEL = "kurz_jobs"


async def notify(conn: AsyncConnection, queue: str) -> None:
    """Tell the listening workers, when `conn`'s transaction commits, that `queue` has work."""
    await conn.execute(sa.select(sa.func.pg_notify(CHANNEL, queue)))


class Wakeups:
    """Waits that end early when a job is enqueued; one listening connection per store."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._listener: Any = None
        self._connecting: asyncio.Task[bool] | None = None
        self._waiters: set[asyncio.Event] = set()
        # Set whenever a wait registers, for `until_waiting`.
        self._registered = asyncio.Event()
        # Enqueues heard so far. A worker reads it before it claims and hands it to
        # `wait`: an enqueue heard between an empty claim and the wait then ends the
        # wait at once, instead of being lost until the next poll.
        self.heard = 0

    async def wait(self, seconds: float, /, *, since: int | None = None) -> None:
        """Sleep up to `seconds`; on PostgreSQL, wake as soon as a job is enqueued, or
        return at once if one was heard after `heard` was `since`."""
        if not await self.listening():
            await asyncio.sleep(seconds)
            return
        if since is not None and self.heard != since:
            return
        # An event per waiter: several workers may share this store, and one must not
        # consume another's wake-up.
        woken = asyncio.Event()
        self._waiters.add(woken)
        self._registered.set()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), seconds)
        finally:
            self._waiters.discard(woken)

    @property
    def waiting(self) -> int:
        """How many waits an enqueue would end now."""
        return len(self._waiters)

    async def until_waiting(self, count: int) -> None:
        """Return once `count` waits are registered: an enqueue sent then ends them all
        (how a test, or anything that must not send a wake-up too early, knows)."""
        while len(self._waiters) < count:
            self._registered.clear()
            await self._registered.wait()

    async def listening(self) -> bool:
        """Whether enqueues are heard; opens the listening connection on first use."""
        if self.db.is_sqlite:
            return False
        if self._listener is not None and not self._listener.is_closed():
            return True
        if self._connecting is None:
            self._connecting = asyncio.get_running_loop().create_task(self._listen())
        connecting = self._connecting
        try:
            # Shielded: a worker cancels its wait whenever a job ends, and a connection
            # cancelled half way would be wasted (or kept without its listener).
            return await asyncio.shield(connecting)
        finally:
            if connecting.done():
                self._connecting = None

    async def _listen(self) -> bool:
        import asyncpg

        dsn = self.db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            connection = await asyncpg.connect(dsn, timeout=5)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("cannot LISTEN for new jobs (%s); polling instead", exc)
            return False
        try:
            await connection.add_listener(CHANNEL, self._on_notify)
        except BaseException:
            connection.terminate()
            raise
        self._listener = connection
        return True

    def _on_notify(self, *_args: object) -> None:
        self.heard += 1
        for woken in self._waiters:
            woken.set()

    async def close(self) -> None:
        if self._connecting is not None:
            await asyncio.gather(self._connecting, return_exceptions=True)
            self._connecting = None
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
