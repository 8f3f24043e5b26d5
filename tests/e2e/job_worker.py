"""A worker process for the e2e job tests: kurz.jobs with the test's own handlers.

    python -m tests.e2e.job_worker DATABASE_URL NAME LEASE_SECONDS

- `effect` inserts a row keyed by its job id into job_effects (the test made the table).
- `slow-first` hangs on its first attempt (the test kills the worker), then does `effect`.
- the schedule `every-second` enqueues `noop` each second.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

import sqlalchemy as sa

from kurz.clock import system_clock
from kurz.db import READ_COMMITTED, Database
from kurz.jobs import JobStore, Registry, Worker
from kurz.jobs.worker import current_job

EFFECTS = sa.table("job_effects", sa.column("job_id"), sa.column("worker"))


async def main(database_url: str, name: str, lease: float) -> None:
    db = Database.from_url(database_url)
    store = JobStore(db, system_clock)
    registry = Registry()

    @registry.job("effect")
    async def effect(_payload: dict[str, Any]) -> None:
        async with db.write(READ_COMMITTED) as conn:
            await conn.execute(sa.insert(EFFECTS).values(job_id=current_job().id, worker=name))

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
        await store.close()
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
