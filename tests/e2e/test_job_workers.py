"""kurz.jobs across real worker processes: exactly one effect per job (PostgreSQL, and
one SQLite file), a killed worker's job finished elsewhere, and each tick of a
schedule enqueued once.

Leases and ticks are read from a clock the test moves (tests.support.FileClock) where
they are what is tested, so a loaded host makes the test slower, never wrong.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from kurz.clock import system_clock
from kurz.db import READ_COMMITTED, Database
from kurz.jobs import JobState, JobStore
from tests.e2e.support import figure
from tests.support import FileClock

ROOT = Path(__file__).resolve().parents[2]
JOBS = 10_000
# It must outlast the longest a live worker's heartbeat can wait: on SQLite, for the
# write lock three processes share (120 s in tests/e2e/job_worker.py).
LEASE = 300.0
# tests/e2e/job_worker.py runs 8 jobs at a time.
CONCURRENCY = 8
# Only so that a broken worker fails the test instead of hanging it: 10,000 jobs on
# a loaded host take minutes, and nothing is asserted about speed.
PATIENCE = 900.0


class Workers:
    """Worker processes (tests/e2e/job_worker.py), each logging to a file of its own."""

    def __init__(self, database_url: str, logs: Path) -> None:
        self.database_url = database_url
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *options: str) -> None:
        with (self.logs / f"{name}.log").open("wb") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "tests.e2e.job_worker", self.database_url, name,
                 "--lease", str(LEASE), *options],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ},
            )  # fmt: skip

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()

    def wait_for_line(self, name: str, text: str) -> None:
        deadline = time.monotonic() + PATIENCE
        while text not in self.log(name):
            assert self.procs[name].poll() is None, self.log(name)
            assert time.monotonic() < deadline, f"{name} never printed {text!r}: {self.log(name)}"
            time.sleep(0.05)

    def kill(self, name: str) -> None:
        self.procs[name].kill()
        self.procs[name].wait()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise AssertionError(f"{name} did not stop on SIGTERM") from None


@pytest.fixture
def workers(postgres_url: str, tmp_path: Path) -> Iterator[Workers]:
    yield from _workers(postgres_url, tmp_path)


@pytest.fixture
def sqlite_workers(sqlite_url: str, tmp_path: Path) -> Iterator[Workers]:
    yield from _workers(sqlite_url, tmp_path)


@pytest.fixture
def shared_clock(tmp_path: Path) -> FileClock:
    """The clock the workers of a test read their time from, when it passes one."""
    shared = FileClock(tmp_path / "clock")
    shared.set(datetime(2026, 1, 1, tzinfo=UTC).timestamp() + 0.5)
    return shared


def _workers(database_url: str, tmp_path: Path) -> Iterator[Workers]:
    async def effects_table() -> None:
        db = Database.from_url(database_url)
        async with db.write(READ_COMMITTED) as conn:
            # No key on job_id: a job run twice must show as two rows, not as an error.
            await conn.execute(sa.text("CREATE TABLE job_effects (job_id BIGINT, worker TEXT)"))
        await db.dispose()

    asyncio.run(effects_table())
    running = Workers(database_url, tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


async def scalar(url: str, query: str) -> int:
    db = Database.from_url(url)
    try:
        async with db.read() as conn:
            return int((await conn.execute(sa.text(query))).scalar_one())
    finally:
        await db.dispose()


async def wait_until_done(url: str, expected: int) -> None:
    deadline = time.monotonic() + PATIENCE
    query = "SELECT count(*) FROM jobs WHERE state = 'done' AND kind <> 'noop'"
    while (done := await scalar(url, query)) < expected:
        assert time.monotonic() < deadline, f"only {done} of {expected} jobs done"
        await asyncio.sleep(0.1)


def run_effects(workers: Workers, jobs: int) -> None:
    """Enqueue `jobs` effect jobs, run them on three worker processes: one effect each."""
    url = workers.database_url

    async def enqueue() -> None:
        db = Database.from_url(url)
        store = JobStore(db, system_clock)
        async with db.write(READ_COMMITTED) as conn:
            for i in range(jobs):
                await store.enqueue("effect", {"i": i}, conn=conn)
        await db.dispose()

    asyncio.run(enqueue())
    # Each worker's first effects wait until all three have filled every slot, so
    # the jobs are certainly shared three ways, however the processes are scheduled.
    for name in ("w1", "w2", "w3"):
        workers.start(name, "--gather", str(3 * CONCURRENCY))
    asyncio.run(wait_until_done(url, jobs))
    workers.stop_all()

    rows = asyncio.run(scalar(url, "SELECT count(*) FROM job_effects"))
    distinct = asyncio.run(scalar(url, "SELECT count(DISTINCT job_id) FROM job_effects"))
    sharing = asyncio.run(scalar(url, "SELECT count(DISTINCT worker) FROM job_effects"))
    print(f"\n{rows} effects, {distinct} distinct jobs, from {sharing} workers")
    assert rows == distinct == jobs
    assert sharing == 3


def test_three_workers_give_10000_jobs_one_effect_each(workers: Workers) -> None:
    run_effects(workers, JOBS)


def test_three_workers_on_one_sqlite_file_never_share_a_job(sqlite_workers: Workers) -> None:
    run_effects(sqlite_workers, 2_000)


def test_a_job_whose_worker_is_killed_is_finished_by_another(
    workers: Workers, shared_clock: FileClock
) -> None:
    url, clock = workers.database_url, shared_clock
    on_clock = ("--clock", str(clock.path))

    async def enqueue() -> int:
        db = Database.from_url(url)
        job = await JobStore(db, clock).enqueue("slow-first", max_attempts=3)
        await db.dispose()
        return job.id

    workers.start("doomed", *on_clock)
    workers.wait_for_line("doomed", "ready")
    job_id = asyncio.run(enqueue())
    workers.wait_for_line("doomed", f"doomed started {job_id}")
    workers.start("survivor", *on_clock)
    workers.wait_for_line("survivor", "ready")
    workers.kill("doomed")
    # The clock stands still until now: no lease can run out under a live worker.
    clock.advance(LEASE + 1)
    ran_out = time.monotonic()
    asyncio.run(wait_until_done(url, 1))
    took = time.monotonic() - ran_out

    async def finished() -> tuple[JobState, int, str]:
        db = Database.from_url(url)
        job = await JobStore(db, clock).get(job_id)
        async with db.read() as conn:
            worker = (await conn.execute(sa.text("SELECT worker FROM job_effects"))).scalar_one()
        await db.dispose()
        assert job is not None
        return job.state, job.attempts, worker

    state, attempts, worker = asyncio.run(finished())
    figure("a worker", "its job", f"finished by {worker} {took:.1f} s after its lease ran out "
                                  f"(on the store's clock), attempt {attempts}")  # fmt: skip
    assert (state, attempts, worker) == (JobState.DONE, 2, "survivor")


def test_three_schedulers_enqueue_each_tick_of_a_one_second_schedule_once(
    workers: Workers, shared_clock: FileClock
) -> None:
    clock, names = shared_clock, ("s1", "s2", "s3")
    first = datetime.fromtimestamp(int(clock()), UTC)
    ticks = [first + timedelta(seconds=n) for n in range(5)]
    for name in names:
        workers.start(name, "--clock", str(clock.path))
    for tick in ticks:
        if tick != first:
            clock.advance(1.0)
        # Every scheduler has asked for this tick before the clock moves on.
        for name in names:
            workers.wait_for_line(name, f"{name} tick {tick.isoformat()} ")
    workers.stop_all()

    async def keys() -> list[str]:
        db = Database.from_url(workers.database_url)
        async with db.read() as conn:
            rows = await conn.execute(
                sa.text("SELECT unique_key FROM jobs WHERE kind = 'noop' ORDER BY unique_key")
            )
            found = [row.unique_key for row in rows]
        await db.dispose()
        return found

    enqueued = asyncio.run(keys())
    print(f"\n{len(enqueued)} ticks enqueued by 3 schedulers: {enqueued}")
    assert enqueued == [f"every-second@{tick.isoformat()}" for tick in ticks]
    # Each tick: asked for by all three, enqueued by exactly one of them.
    answers = Counter(
        line.split(" ", 1)[1]
        for name in names
        for line in workers.log(name).splitlines()
        if line.startswith(f"{name} tick ")
    )
    assert answers == {
        **{f"tick {tick.isoformat()} enqueued": 1 for tick in ticks},
        **{f"tick {tick.isoformat()} taken": 2 for tick in ticks},
    }
