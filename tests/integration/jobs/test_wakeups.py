"""kurz.jobs.wakeups: on PostgreSQL a committed enqueue ends an idle worker's wait."""

from __future__ import annotations

import asyncio

from kurz.db import Database
from kurz.jobs import JobStore
from kurz.jobs.wakeups import Wakeups

# Far longer than the test: a wait that ends was ended by the enqueue, not its timeout.
FOREVER = 3600.0
# Only so that a wake-up that never comes fails the test instead of hanging it.
HANG_GUARD = 60.0


async def test_a_committed_enqueue_ends_every_wait(store: JobStore, db: Database) -> None:
    wakeups = store.wakeups
    if db.is_sqlite:
        assert not await wakeups.listening()
        return
    assert await wakeups.listening()
    waits = [asyncio.create_task(wakeups.wait(FOREVER)) for _ in range(2)]
    async with asyncio.timeout(HANG_GUARD):
        # Each wait registers before the enqueue is sent.
        await wakeups.until_waiting(2)
        assert not any(wait.done() for wait in waits)
        await store.enqueue("k", queue="mail")
        await asyncio.gather(*waits)
    assert wakeups.waiting == 0


async def test_a_listener_that_cannot_connect_falls_back_to_polling(database_url: str) -> None:
    db = Database.from_url(database_url)
    if not db.is_sqlite:
        db = Database.from_url(db.engine.url.set(port=1).render_as_string(hide_password=False))
    wakeups = Wakeups(db)
    try:
        assert not await wakeups.listening()
        await wakeups.wait(0)
    finally:
        await wakeups.close()
        await db.dispose()
