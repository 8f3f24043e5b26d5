"""A worker process for the e2e job tests: kurz.jobs with the test's own handlers.

    python -m tests.e2e.job_worker DATABASE_URL NAME --lease SECONDS
        [--clock FILE] [--gather ROWS]

- `effect` inserts a row keyed by its job id into job_effects (the test made the
  table); with --gather, it then waits until the table holds ROWS rows, so that the
  first jobs are held until every worker has taken its share.
- `slow-first` hangs on its first attempt (the test kills the worker), then does `effect`.
- the schedule `every-second` enqueues `noop` each second, and the worker prints each
  tick it asked the store for (`NAME tick ISO enqueued|taken`).
- --clock: the time is read from FILE (tests.support.FileClock), which the test moves.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from kurz.clock import system_clock
from kurz.db import READ_COMMITTED, Database
from kurz.jobs import Job, JobStore, Registry, Worker
from kurz.jobs.worker import current_job
from tests.support import FileClock

EFFECTS = sa.table("job_effects", sa.column("job_id"), sa.column("worker"))


class TellingStore(JobStore):
    """A JobStore that prints each tick it was asked to enqueue, once it has answered."""

    name = ""

    async def enqueue_tick(
        self,
        schedule: str,
        tick: datetime,
        kind: str,
        payload: Mapping[str, Any] | None = None,
        *,
        queue: str = "default",
        max_attempts: int = 5,
    ) -> Job | None:
        job = await super().enqueue_tick(
            schedule, tick, kind, payload, queue=queue, max_attempts=max_attempts
        )
        outcome = "taken" if job is None else "enqueued"
        print(f"{self.name} tick {tick.isoformat()} {outcome}", flush=True)
        return job


def patient(db: Database) -> None:
    """Let SQLite writes wait up to 120 s for the write lock, instead of kurz's 10 s.

    Three processes share one writer lock on a loaded host, and SQLite's lock is not
    fair: a completion that gave up waiting would leave its job to run again once its
    lease ran out, as delivery is at least once. Not what these tests are about.
    """

    @event.listens_for(db.engine.sync_engine, "connect")
    def _wait_longer(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=120000")
        cursor.close()


async def gathered(db: Database, rows: int, done: asyncio.Event) -> None:
    """Set `done` once job_effects holds `rows` rows: one poll for the whole process."""
    count = sa.select(sa.func.count()).select_from(EFFECTS)
    while True:
        async with db.read() as conn:
            if (await conn.execute(count)).scalar_one() >= rows:
                done.set()
                return
        await asyncio.sleep(0.1)


async def main(database_url: str, name: str, lease: float, clock: Path | None, gather: int) -> None:
    db = Database.from_url(database_url)
    if db.is_sqlite:
        patient(db)
    store = TellingStore(db, system_clock if clock is None else FileClock(clock))
    store.name = name
    registry = Registry()
    all_there = asyncio.Event()
    if gather:
        watch = asyncio.create_task(gathered(db, gather, all_there))
    else:
        all_there.set()

    @registry.job("effect")
    async def effect(_payload: dict[str, Any]) -> None:
        async with db.write(READ_COMMITTED) as conn:
            await conn.execute(sa.insert(EFFECTS).values(job_id=current_job().id, worker=name))
        await all_there.wait()

    @registry.job("slow-first", timeout=120.0)
    async def slow_first(payload: dict[str, Any]) -> None:
        if current_job().attempts == 1:
            print(f"{name} started {current_job().id}", flush=True)
            await asyncio.sleep(120)
        await effect(payload)

    @registry.job("noop")
    async def noop(_payload: dict[str, Any]) -> None:
        pass

    registry.every("every-second", 1.0, "noop")
    worker = Worker(store, registry, name=name, concurrency=8, lease=lease, poll=0.2)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, worker.stop)
    print(f"{name} ready", flush=True)
    try:
        await worker.run()
    finally:
        if gather:
            watch.cancel()
        await store.close()
        await db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("name")
    parser.add_argument("--lease", type=float, required=True)
    parser.add_argument("--clock", type=Path)
    parser.add_argument("--gather", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(main(args.database_url, args.name, args.lease, args.clock, args.gather))
