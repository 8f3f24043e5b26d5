"""kurz.jobs across real worker processes: exactly one effect per job (PostgreSQL, and
one SQLite file), a killed worker's job finished elsewhere, and each tick of a
schedule enqueued once."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from kurz.clock import system_clock
from kurz.db import READ_COMMITTED, Database
from kurz.jobs import JobState, JobStore
from tests.e2e.support import figure

ROOT = Path(__file__).resolve().parents[2]
JOBS = 10_000


class Workers:
    """Worker processes (tests/e2e/job_worker.py), each logging to a file of its own."""

    def __init__(self, database_url: str, logs: Path, *, lease: float) -> None:
        self.database_url = database_url
        self.logs = logs
        self.lease = lease
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        with (self.logs / f"{name}.log").open("wb") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "tests.e2e.job_worker", self.database_url, name,
                 str(self.lease)],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ},
            )  # fmt: skip

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()

    def wait_for_line(self, name: str, text: str) -> None:
        for _ in range(600):
            if text in self.log(name):
                return
            assert self.procs[name].poll() is None, self.log(name)
            time.sleep(0.05)
        raise AssertionError(f"{name} never printed {text!r}: {self.log(name)}")

    def kill(self, name: str) -> None:
        self.procs[name].kill()
        self.procs[name].wait()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise AssertionError(f"{name} did not stop on SIGTERM") from None


@pytest.fixture
def workers(postgres_url: str, tmp_path: Path) -> Iterator[Workers]:
    # A short lease, so that a killed worker's job is taken over within the test.
    yield from _workers(postgres_url, tmp_path, lease=2.0)


@pytest.fixture
def sqlite_workers(sqlite_url: str, tmp_path: Path) -> Iterator[Workers]:
    # kurz's default lease. Three processes share one SQLite writer lock, and a
    # heartbeat may wait out the busy timeout (10 s) for it: a 2 s lease then ran
    # out under a live worker now and then, and its job rightly ran twice (delivery
    # is at least once). The lease must outlast the database's longest write wait.
    yield from _workers(sqlite_url, tmp_path, lease=30.0)


def _workers(database_url: str, tmp_path: Path, *, lease: float) -> Iterator[Workers]:
    async def effects_table() -> None:
        db = Database.from_url(database_url)
        async with db.write(READ_COMMITTED) as conn:
            # No key on job_id: a job run twice must show as two rows, not as an error.
            await conn.execute(sa.text("CREATE TABLE job_effects (job_id BIGINT, worker TEXT)"))
        await db.dispose()

    asyncio.run(effects_table())
    running = Workers(database_url, tmp_path, lease=lease)
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
    for _ in range(1_200):
        done = await scalar(
            url, "SELECT count(*) FROM jobs WHERE state = 'done' AND kind <> 'noop'"
        )
        if done >= expected:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"only {done} of {expected} jobs done")


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
    for name in ("w1", "w2", "w3"):
        workers.start(name)
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


def test_a_job_whose_worker_is_killed_is_finished_by_another(workers: Workers) -> None:
    url = workers.database_url

    async def enqueue() -> int:
        db = Database.from_url(url)
        job = await JobStore(db, system_clock).enqueue("slow-first", max_attempts=3)
        await db.dispose()
        return job.id

    workers.start("doomed")
    workers.wait_for_line("doomed", "ready")
    job_id = asyncio.run(enqueue())
    workers.wait_for_line("doomed", f"doomed started {job_id}")
    workers.start("survivor")
    workers.wait_for_line("survivor", "ready")
    killed_at = time.monotonic()
    workers.kill("doomed")
    asyncio.run(wait_until_done(url, 1))
    took = time.monotonic() - killed_at

    async def finished() -> tuple[JobState, int, str]:
        db = Database.from_url(url)
        job = await JobStore(db, system_clock).get(job_id)
        async with db.read() as conn:
            worker = (await conn.execute(sa.text("SELECT worker FROM job_effects"))).scalar_one()
        await db.dispose()
        assert job is not None
        return job.state, job.attempts, worker

    state, attempts, worker = asyncio.run(finished())
    figure("a worker", "its job", f"finished by {worker} {took:.1f} s after the kill "
                                  f"(lease 2 s), attempt {attempts}")  # fmt: skip
    assert (state, attempts, worker) == (JobState.DONE, 2, "survivor")


def test_three_schedulers_enqueue_each_tick_of_a_one_second_schedule_once(
    workers: Workers,
) -> None:
    for name in ("s1", "s2", "s3"):
        workers.start(name)
    for name in ("s1", "s2", "s3"):
        workers.wait_for_line(name, "ready")
    time.sleep(4.5)
    workers.stop_all()

    async def ticks() -> list[str]:
        db = Database.from_url(workers.database_url)
        async with db.read() as conn:
            rows = await conn.execute(
                sa.text("SELECT unique_key FROM jobs WHERE kind = 'noop' ORDER BY unique_key")
            )
            keys = [row.unique_key for row in rows]
        await db.dispose()
        return keys

    keys = asyncio.run(ticks())
    print(f"\n{len(keys)} ticks enqueued by 3 schedulers: {keys}")
    assert len(keys) >= 4
    assert len(set(keys)) == len(keys)
    moments = [datetime.fromisoformat(key.partition("@")[2]) for key in keys]
    # One job a second, none missing between the first and the last.
    gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(moments)}
    assert gaps == {1.0}
