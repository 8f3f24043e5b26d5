"""kurz.jobs.wakeups: on PostgreSQL a committed enqueue ends an idle worker's wait."""

from __future__ import annotations

import asyncio
from typing import Any

from kurz.db import Database
from kurz.jobs import Job, JobStore, Registry, Worker
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


async def enqueue_heard(store: JobStore, kind: str) -> None:
    """Enqueue a job and return once its NOTIFY has been heard (a wait of our own,
    registered first, ends by it)."""
    wakeups = store.wakeups
    probe = asyncio.create_task(wakeups.wait(FOREVER))
    await wakeups.until_waiting(wakeups.waiting + 1)
    await store.enqueue(kind, queue="mail")
    await probe


async def test_an_enqueue_heard_before_the_wait_starts_ends_it_at_once(
    store: JobStore, db: Database
) -> None:
    wakeups = store.wakeups
    if db.is_sqlite:
        return
    assert await wakeups.listening()
    seen = wakeups.heard
    async with asyncio.timeout(HANG_GUARD):
        await enqueue_heard(store, "k")
        assert wakeups.heard == seen + 1
        # As a worker whose claim found nothing just before that enqueue: not lost.
        await wakeups.wait(FOREVER, since=seen)
        # Nothing heard since: a wait still waits for the next one.
        later = asyncio.create_task(wakeups.wait(FOREVER, since=wakeups.heard))
        await wakeups.until_waiting(1)
        assert not later.done()
        await store.enqueue("k", queue="mail")
        await later


async def test_a_job_enqueued_between_an_empty_claim_and_the_wait_runs_at_once(
    store: JobStore, db: Database
) -> None:
    """The lost wake-up: the worker's claim finds nothing, a job is enqueued and its
    NOTIFY heard before the worker waits. With a poll of an hour, only the wake-up
    can run it within the test."""
    if db.is_sqlite:
        return
    registry = Registry()
    ran = asyncio.Event()

    @registry.job("late")
    async def late(_payload: dict[str, object]) -> None:
        ran.set()

    claim = store.claim
    raced = False

    async def claim_then_enqueue(**options: Any) -> list[Job]:
        nonlocal raced
        found = await claim(**options)
        if not found and not raced:
            raced = True
            await enqueue_heard(store, "late")
        return found

    store.claim = claim_then_enqueue  # type: ignore[method-assign]
    worker = Worker(store, registry, name="w1", poll=FOREVER)
    running = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(HANG_GUARD):
            await ran.wait()
    finally:
        worker.stop()
        await running
    assert raced
