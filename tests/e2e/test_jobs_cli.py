"""`kurz jobs list` and `kurz jobs retry`, as an operator runs them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from kurz.db import Database
from kurz.jobs import JobState, JobStore
from tests.e2e.support import Server, kurz_env, run
from tests.support import FakeClock


async def dead_job(database_url: str) -> int:
    db = Database.from_url(database_url)
    try:
        store = JobStore(db, FakeClock())
        job = await store.enqueue("send-webhook", {"to": "x"}, max_attempts=1)
        await store.claim(worker="w", limit=1, lease=30)
        error = "Traceback (most recent call last):\n  ...\nConnectionError: refused"
        assert await store.fail(job.id, worker="w", error=error, retry_in=5) is JobState.DEAD
        return job.id
    finally:
        await db.dispose()


def test_dead_jobs_are_listed_and_retried_by_hand(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/kurz.db"
    env = kurz_env(KURZ_DATABASE_URL=url, COLUMNS="200")  # one row a job, unwrapped
    assert run(["migrate"], env, tmp_path).returncode == 0
    job_id = asyncio.run(dead_job(url))

    listed = run(["jobs", "list", "--state", "dead"], env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "send-webhook" in listed.stdout
    assert "ConnectionError: refused" in listed.stdout
    assert "1/1" in listed.stdout

    retried = run(["jobs", "retry", str(job_id)], env, tmp_path)
    assert retried.returncode == 0, retried.stderr
    assert run(["jobs", "list", "--state", "dead"], env, tmp_path).stdout.count("send-webhook") == 0
    assert "send-webhook" in run(["jobs", "list", "--state", "queued"], env, tmp_path).stdout

    again = run(["jobs", "retry", str(job_id)], env, tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip() == (
        f"error: job {job_id} is queued, not dead: only a dead job is retried"
    )

    missing = run(["jobs", "retry", "99"], env, tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.strip() == "error: no job 99"


def test_kurz_serve_runs_the_embedded_worker_with_kurzs_own_jobs(tmp_path: Path) -> None:
    env = kurz_env(KURZ_DATABASE_URL=f"sqlite:///{tmp_path}/kurz.db", COLUMNS="200")
    server = Server(tmp_path, env)
    try:
        server.wait_ready()
        # Both schedules are due at once on a first start (docs/jobs.md).
        for _ in range(100):
            done = run(["jobs", "list", "--state", "done"], env, tmp_path).stdout
            if "purge-idempotency-keys" in done and "retire-expired-links" in done:
                break
            time.sleep(0.1)
    finally:
        server.stop()
    assert "purge-idempotency-keys" in done
    assert "retire-expired-links" in done
