"""The job store, one suite over real SQLite and real PostgreSQL, on an injected clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, Database
from kurz.jobs import JobState, JobStore
from tests.support import FakeClock


async def test_an_enqueued_job_is_claimed_once_and_completed(store: JobStore) -> None:
    job = await store.enqueue("send", {"to": "x"}, max_attempts=3)
    assert job.state is JobState.QUEUED
    assert job.payload == {"to": "x"}
    [claimed] = await store.claim(worker="w1", limit=10, lease=30)
    assert (claimed.id, claimed.state, claimed.attempts) == (job.id, JobState.RUNNING, 1)
    assert claimed.locked_by == "w1"
    assert await store.claim(worker="w2", limit=10, lease=30) == []
    assert not await store.complete(job.id, worker="w2")
    assert await store.complete(job.id, worker="w1")
    done = await store.get(job.id)
    assert done is not None
    assert done.state is JobState.DONE
    assert done.finished_at == utcnow(store.clock)


async def test_claims_follow_priority_then_run_at_and_wait_for_delays(
    store: JobStore, clock: FakeClock
) -> None:
    late = await store.enqueue("k", {"n": "late"}, delay=60)
    low = await store.enqueue("k", {"n": "low"})
    high = await store.enqueue("k", {"n": "high"}, priority=5)
    clock.advance(1)
    low2 = await store.enqueue("k", {"n": "low2"})
    claimed = await store.claim(worker="w", limit=10, lease=300)
    assert [job.id for job in claimed] == [high.id, low.id, low2.id]
    clock.advance(60)
    assert [job.id for job in await store.claim(worker="w", limit=10, lease=30)] == [late.id]


async def test_queues_are_claimed_separately(store: JobStore) -> None:
    mail = await store.enqueue("k", queue="mail")
    await store.enqueue("k", queue="hooks")
    assert [
        job.id for job in await store.claim(worker="w", limit=5, lease=30, queues=["mail"])
    ] == [mail.id]


async def test_a_unique_key_adds_one_job_until_it_is_finished(store: JobStore) -> None:
    first = await store.enqueue("k", {"a": 1}, unique_key="u")
    again = await store.enqueue("k", {"a": 2}, unique_key="u")
    assert again.id == first.id
    assert again.payload == {"a": 1}
    await store.claim(worker="w", limit=1, lease=30)
    assert (await store.enqueue("k", unique_key="u")).id == first.id
    await store.complete(first.id, worker="w")
    assert (await store.enqueue("k", unique_key="u")).id != first.id


async def test_concurrent_enqueues_with_one_unique_key_make_one_job(store: JobStore) -> None:
    made = await asyncio.gather(*(store.enqueue("k", unique_key="same") for _ in range(10)))
    assert len({job.id for job in made}) == 1
    counts = await store.counts()
    assert counts == {("default", JobState.QUEUED): 1}


async def test_enqueue_joins_the_callers_transaction(store: JobStore, db: Database) -> None:
    async def enqueue_then_fail() -> None:
        async with db.write(READ_COMMITTED) as conn:
            await store.enqueue("k", {"n": 1}, conn=conn)
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        await enqueue_then_fail()
    assert await store.counts() == {}
    async with db.write(READ_COMMITTED) as conn:
        job = await store.enqueue("k", {"n": 2}, conn=conn)
    assert await store.get(job.id) is not None


async def test_failures_retry_after_the_delay_then_go_dead_with_the_last_error(
    store: JobStore, clock: FakeClock
) -> None:
    job = await store.enqueue("k", max_attempts=2)
    await store.claim(worker="w", limit=1, lease=30)
    assert await store.fail(job.id, worker="w", error="boom 1", retry_in=10) is JobState.QUEUED
    assert await store.claim(worker="w", limit=1, lease=30) == []
    clock.advance(10)
    [again] = await store.claim(worker="w", limit=1, lease=30)
    assert again.attempts == 2
    assert again.last_error == "boom 1"
    assert await store.fail(job.id, worker="w", error="boom 2", retry_in=10) is JobState.DEAD
    clock.advance(100)
    assert await store.claim(worker="w", limit=1, lease=30) == []
    [dead] = await store.list(state=JobState.DEAD)
    assert (dead.id, dead.last_error) == (job.id, "boom 2")
    # By hand: queued again, with fresh attempts.
    assert await store.retry(job.id)
    assert not await store.retry(job.id)
    [revived] = await store.claim(worker="w", limit=1, lease=30)
    assert (revived.id, revived.attempts) == (job.id, 1)


async def test_a_failure_without_retry_is_dead_at_once(store: JobStore) -> None:
    job = await store.enqueue("unknown-kind", max_attempts=5)
    await store.claim(worker="w", limit=1, lease=30)
    assert await store.fail(job.id, worker="w", error="no handler", retry_in=None) is JobState.DEAD


async def test_a_lease_that_runs_out_lets_another_worker_take_the_job(
    store: JobStore, clock: FakeClock
) -> None:
    job = await store.enqueue("k", max_attempts=3)
    await store.claim(worker="dead-worker", limit=1, lease=30)
    clock.advance(20)
    assert await store.heartbeat([job.id], worker="dead-worker", lease=30) == {job.id}
    clock.advance(29)
    assert await store.claim(worker="w2", limit=1, lease=30) == []
    clock.advance(2)
    [taken] = await store.claim(worker="w2", limit=1, lease=30)
    assert (taken.id, taken.locked_by, taken.attempts) == (job.id, "w2", 2)
    # The first worker has lost it: it can neither extend nor finish it.
    assert await store.heartbeat([job.id], worker="dead-worker", lease=30) == set()
    assert not await store.complete(job.id, worker="dead-worker")
    assert await store.fail(job.id, worker="dead-worker", error="x", retry_in=1) is None
    assert await store.complete(job.id, worker="w2")


async def test_a_lease_that_runs_out_on_the_last_attempt_leaves_the_job_dead(
    store: JobStore, clock: FakeClock
) -> None:
    job = await store.enqueue("k", max_attempts=1)
    await store.claim(worker="w1", limit=1, lease=30)
    clock.advance(31)
    assert await store.claim(worker="w2", limit=1, lease=30) == []
    dead = await store.get(job.id)
    assert dead is not None
    assert dead.state is JobState.DEAD
    assert dead.last_error is not None
    assert "lease" in dead.last_error


async def test_release_gives_a_job_back_without_using_an_attempt(store: JobStore) -> None:
    job = await store.enqueue("k", max_attempts=1)
    await store.claim(worker="w", limit=1, lease=30)
    assert await store.release(job.id, worker="w")
    [again] = await store.claim(worker="w", limit=1, lease=30)
    assert (again.id, again.attempts) == (job.id, 1)


async def test_counts_and_the_oldest_due_age(store: JobStore, clock: FakeClock) -> None:
    assert await store.oldest_due_age() is None
    await store.enqueue("k", queue="a")
    clock.advance(5)
    await store.enqueue("k", queue="a")
    await store.enqueue("k", queue="b", delay=100)
    assert await store.oldest_due_age() == 5.0
    assert await store.oldest_due_age("b") is None
    await store.claim(worker="w", limit=1, lease=30, queues=["a"])
    assert await store.counts() == {
        ("a", JobState.RUNNING): 1,
        ("a", JobState.QUEUED): 1,
        ("b", JobState.QUEUED): 1,
    }


async def test_each_tick_of_a_schedule_is_enqueued_once(store: JobStore, clock: FakeClock) -> None:
    tick = utcnow(clock).replace(microsecond=0)
    made = await asyncio.gather(*(store.enqueue_tick("purge", tick, "k") for _ in range(5)))
    assert sum(job is not None for job in made) == 1
    # An older tick, or the same one again, after the job ran: nothing.
    [job] = [job for job in made if job is not None]
    await store.claim(worker="w", limit=1, lease=30)
    await store.complete(job.id, worker="w")
    assert await store.enqueue_tick("purge", tick, "k") is None
    assert await store.enqueue_tick("purge", tick - timedelta(seconds=1), "k") is None
    assert await store.enqueue_tick("purge", tick + timedelta(seconds=1), "k") is not None
    assert await store.enqueue_tick("other", tick, "k") is not None


async def test_completions_at_once_share_one_write_and_answer_each(store: JobStore) -> None:
    made = [await store.enqueue("k", {"i": i}) for i in range(6)]
    await store.claim(worker="w1", limit=3, lease=30)
    await store.claim(worker="w2", limit=3, lease=30)
    # w1 holds the first three: its completions of the others are refused.
    answers = await asyncio.gather(*(store.complete(job.id, worker="w1") for job in made))
    assert answers == [True, True, True, False, False, False]
    assert await store.counts() == {
        ("default", JobState.DONE): 3,
        ("default", JobState.RUNNING): 3,
    }


async def test_concurrent_claims_never_share_a_job(store: JobStore) -> None:
    for i in range(40):
        await store.enqueue("k", {"i": i})
    batches = await asyncio.gather(
        *(store.claim(worker=f"w{n}", limit=10, lease=30) for n in range(6))
    )
    claimed = [job.id for batch in batches for job in batch]
    assert len(claimed) == len(set(claimed)) == 40
