"""The worker over real SQLite and real PostgreSQL, on an injected clock.

Retry delays and leases are measured on the FakeClock, so no test sleeps for them;
only handler timeouts and shutdown waits take (a little) real time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import pytest

from kurz.clock import utcnow
from kurz.db import Database
from kurz.jobs import Backoff, Job, JobState, JobStore, Registry, Worker, current_job
from tests.support import FakeClock

# The ceiling of each delay, exactly: 1 s, 2 s, 4 s, ...
NO_JITTER = Backoff(base=1.0, cap=3600.0, rng=lambda: 1.0)
# Longer than anything a test waits for, on any host: only a broken worker reaches it.
WAIT = 30.0


@pytest.fixture
async def more_stores(database_url: str, clock: FakeClock) -> AsyncIterator[Callable[[], JobStore]]:
    """Stores with engines of their own, as other worker processes would have."""
    async with AsyncExitStack() as stack:

        def make() -> JobStore:
            database = Database.from_url(database_url)
            jobs = JobStore(database, clock)
            stack.push_async_callback(database.dispose)
            stack.push_async_callback(jobs.close)
            return jobs

        yield make


@pytest.fixture
def registry() -> Registry:
    return Registry()


def worker(store: JobStore, registry: Registry, name: str = "w1", **options: Any) -> Worker:
    options.setdefault("backoff", NO_JITTER)
    return Worker(store, registry, name=name, **options)


async def get(store: JobStore, job: Job) -> Job:
    found = await store.get(job.id)
    assert found is not None
    return found


def seconds_until(moment: Any, clock: FakeClock) -> float:
    return float((moment - utcnow(clock)).total_seconds())


async def test_a_job_runs_with_its_payload_and_completes(
    store: JobStore, registry: Registry
) -> None:
    seen: list[tuple[dict[str, Any], int]] = []

    @registry.job("greet")
    async def greet(payload: dict[str, Any]) -> None:
        seen.append((payload, current_job().id))

    job = await store.enqueue("greet", {"name": "ada"})
    w = worker(store, registry)
    assert await w.run_once() == 1
    assert seen == [({"name": "ada"}, job.id)]
    done = await get(store, job)
    assert (done.state, done.attempts, done.locked_by) == (JobState.DONE, 1, None)
    assert w.stats.done == 1
    assert await w.run_once() == 0


async def test_a_failing_job_backs_off_then_dies_with_its_last_error(
    store: JobStore, registry: Registry, clock: FakeClock
) -> None:
    calls = 0

    @registry.job("flaky")
    async def flaky(payload: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError(f"boom {calls}")

    job = await store.enqueue("flaky", max_attempts=3)
    w = worker(store, registry)
    for attempt, delay in [(1, 1.0), (2, 2.0)]:
        assert await w.run_once() == 1
        queued = await get(store, job)
        assert (queued.state, queued.attempts) == (JobState.QUEUED, attempt)
        assert queued.last_error is not None
        assert f"RuntimeError: boom {attempt}" in queued.last_error
        assert seconds_until(queued.run_at, clock) == pytest.approx(delay, abs=1e-3)
        clock.advance(delay - 0.01)
        assert await w.run_once() == 0, "ran before its backoff was over"
        clock.advance(0.01)

    assert await w.run_once() == 1
    dead = await get(store, job)
    assert (dead.state, dead.attempts) == (JobState.DEAD, 3)
    assert dead.last_error is not None
    assert "RuntimeError: boom 3" in dead.last_error
    assert dead.finished_at is not None
    assert (w.stats.failed, w.stats.dead, w.stats.done) == (3, 1, 0)
    clock.advance(86400)
    assert await w.run_once() == 0

    # kurz jobs retry ID
    assert await store.retry(job.id)
    assert await w.run_once() == 1
    assert calls == 4


async def test_a_kind_caps_the_attempts_of_its_jobs(
    store: JobStore, registry: Registry, clock: FakeClock
) -> None:
    @registry.job("fragile", max_attempts=2)
    async def fragile(payload: dict[str, Any]) -> None:
        raise ValueError("no")

    job = await store.enqueue("fragile", max_attempts=10)
    w = worker(store, registry)
    assert await w.run_once() == 1
    clock.advance(1)
    assert await w.run_once() == 1
    assert (await get(store, job)).state is JobState.DEAD


async def test_a_job_over_its_timeout_is_cancelled_and_counted_as_a_failure(
    store: JobStore, registry: Registry
) -> None:
    cancelled = asyncio.Event()

    @registry.job("slow", timeout=0.05)
    async def slow(payload: dict[str, Any]) -> None:
        try:
            await asyncio.sleep(WAIT)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    @registry.job("upstream")
    async def upstream(payload: dict[str, Any]) -> None:
        raise TimeoutError("the upstream timed out")

    slow_job = await store.enqueue("slow")
    w = worker(store, registry)
    assert await asyncio.wait_for(w.run_once(), WAIT) == 1
    assert cancelled.is_set()
    failed = await get(store, slow_job)
    assert (failed.state, failed.attempts) == (JobState.QUEUED, 1)
    assert failed.last_error == "timed out after 0.05 s"
    assert (w.stats.failed, w.stats.timed_out) == (1, 1)

    # A handler's own TimeoutError is an ordinary failure, not the kind's timeout.
    upstream_job = await store.enqueue("upstream")
    assert await w.run_once() == 1
    error = (await get(store, upstream_job)).last_error
    assert error is not None
    assert "TimeoutError: the upstream timed out" in error
    assert (w.stats.failed, w.stats.timed_out) == (2, 1)


async def test_a_job_of_an_unknown_kind_is_dead_at_once(
    store: JobStore, registry: Registry
) -> None:
    job = await store.enqueue("nobody-handles-this", max_attempts=5)
    w = worker(store, registry)
    assert await w.run_once() == 1
    dead = await get(store, job)
    assert (dead.state, dead.attempts) == (JobState.DEAD, 1)
    assert dead.last_error == "no handler is registered for job kind 'nobody-handles-this'"
    assert (w.stats.failed, w.stats.dead) == (1, 1)


async def test_a_unique_key_runs_one_job_until_it_is_finished(
    store: JobStore, registry: Registry
) -> None:
    seen: list[dict[str, Any]] = []

    @registry.job("welcome")
    async def welcome(payload: dict[str, Any]) -> None:
        seen.append(payload)

    first = await store.enqueue("welcome", {"n": 1}, unique_key="welcome:7")
    again = await store.enqueue("welcome", {"n": 2}, unique_key="welcome:7")
    assert again.id == first.id
    w = worker(store, registry)
    assert await w.run_once() == 1
    assert await w.run_once() == 0
    assert seen == [{"n": 1}]
    later = await store.enqueue("welcome", {"n": 3}, unique_key="welcome:7")
    assert later.id != first.id


async def test_run_picks_up_new_jobs_and_keeps_to_its_concurrency(
    store: JobStore, registry: Registry
) -> None:
    active = peak = finished = 0
    all_done = asyncio.Event()

    @registry.job("work")
    async def work(payload: dict[str, Any]) -> None:
        nonlocal active, peak, finished
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.02)
        active -= 1
        finished += 1
        if finished == 6:
            all_done.set()

    w = worker(store, registry, concurrency=2, poll=0.05)
    task = asyncio.create_task(w.run())
    for n in range(6):
        await store.enqueue("work", {"n": n})
    await asyncio.wait_for(all_done.wait(), WAIT)
    w.stop()
    await asyncio.wait_for(task, WAIT)
    assert 1 <= peak <= 2
    assert w.stats.done == 6
    assert w.running == 0


async def test_a_graceful_stop_finishes_what_it_can_and_releases_the_rest(
    store: JobStore, registry: Registry
) -> None:
    started = {"finishing": asyncio.Event(), "stuck": asyncio.Event()}
    gate = asyncio.Event()

    @registry.job("finishing")
    async def finishing(payload: dict[str, Any]) -> None:
        started["finishing"].set()
        await gate.wait()

    @registry.job("stuck")
    async def stuck(payload: dict[str, Any]) -> None:
        started["stuck"].set()
        await asyncio.sleep(WAIT * 10)

    finishing_job = await store.enqueue("finishing")
    stuck_job = await store.enqueue("stuck")
    w = worker(store, registry, concurrency=2, poll=0.05, shutdown_timeout=0.2)
    task = asyncio.create_task(w.run())
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started.values())), WAIT)
    w.stop()
    # In the same turn of the loop as stop(), before the shutdown's wait has begun:
    # the finishing job ends within it however slow the host.
    gate.set()
    after_stop = await store.enqueue("finishing")
    await asyncio.wait_for(task, WAIT)

    assert (await get(store, finishing_job)).state is JobState.DONE
    released = await get(store, stuck_job)
    # Back in the queue for any worker, and the interrupted attempt does not count.
    assert (released.state, released.attempts, released.locked_by) == (JobState.QUEUED, 0, None)
    assert (await get(store, after_stop)).state is JobState.QUEUED
    assert (w.stats.done, w.stats.released) == (1, 1)


async def test_the_heartbeat_keeps_a_long_job_leased(
    store: JobStore,
    registry: Registry,
    clock: FakeClock,
    more_stores: Callable[[], JobStore],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started, gate = asyncio.Event(), asyncio.Event()

    @registry.job("long")
    async def long(payload: dict[str, Any]) -> None:
        started.set()
        await gate.wait()

    # The clock when each heartbeat that kept the job's lease began.
    beats: list[float] = []
    beaten = asyncio.Event()
    heartbeat = store.heartbeat

    async def heartbeat_and_tell(job_ids: list[int], *, worker: str, lease: float) -> set[int]:
        began = clock()
        held = await heartbeat(job_ids, worker=worker, lease=lease)
        if job.id in held:
            beats.append(began)
            beaten.set()
        return held

    async def a_heartbeat_since(moment: float) -> None:
        while not any(began >= moment for began in beats):
            beaten.clear()
            await beaten.wait()

    monkeypatch.setattr(store, "heartbeat", heartbeat_and_tell)
    job = await store.enqueue("long")
    # A heartbeat every 0.1 s of real time, each extending the lease to 0.3 s on the
    # clock. A long poll keeps the worker from claiming its own job back instead.
    w = worker(store, registry, lease=0.3, poll=WAIT * 3)
    task = asyncio.create_task(w.run())
    await asyncio.wait_for(started.wait(), WAIT)
    first_lease = (await get(store, job)).locked_until
    clock.advance(0.2)
    # However long that takes: the clock stands still meanwhile.
    await asyncio.wait_for(a_heartbeat_since(clock()), WAIT)
    clock.advance(0.2)
    # 0.4 s after the claim, past the first lease but not past the extended one.
    other = worker(more_stores(), registry, name="w2")
    assert await asyncio.wait_for(other.run_once(), WAIT) == 0
    leased = await get(store, job)
    assert first_lease is not None
    assert leased.locked_until is not None
    assert leased.locked_until > first_lease
    gate.set()
    w.stop()
    await asyncio.wait_for(task, WAIT)
    assert (await get(store, job)).state is JobState.DONE


async def test_a_run_whose_lease_was_taken_is_cancelled(
    store: JobStore, registry: Registry, clock: FakeClock, more_stores: Callable[[], JobStore]
) -> None:
    runs = 0
    started, cancelled = asyncio.Event(), asyncio.Event()

    @registry.job("once")
    async def once(payload: dict[str, Any]) -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            started.set()
            try:
                await asyncio.sleep(WAIT * 10)
            except asyncio.CancelledError:
                cancelled.set()
                raise

    job = await store.enqueue("once")
    stalled = worker(store, registry, name="stalled", lease=30.0)
    first = asyncio.create_task(stalled.run_once())
    await asyncio.wait_for(started.wait(), WAIT)
    # The stalled worker misses its heartbeats; its lease runs out and another takes it.
    clock.advance(31)
    other = worker(more_stores(), registry, name="other")
    assert await other.run_once() == 1
    assert await stalled.extend_leases() == {job.id}
    await asyncio.wait_for(cancelled.wait(), WAIT)
    assert await asyncio.wait_for(first, WAIT) == 1
    done = await get(store, job)
    assert (done.state, done.attempts) == (JobState.DONE, 2)
    assert (stalled.stats.lost, stalled.stats.done, other.stats.done) == (1, 0, 1)


async def test_a_worker_that_takes_back_its_own_job_keeps_one_run(
    store: JobStore, registry: Registry, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = 0
    started, gate = asyncio.Event(), asyncio.Event()

    @registry.job("single")
    async def single(payload: dict[str, Any]) -> None:
        nonlocal runs
        runs += 1
        started.set()
        await gate.wait()

    job = await store.enqueue("single")
    w = worker(store, registry, lease=30.0)
    first = asyncio.create_task(w.run_once())
    await asyncio.wait_for(started.wait(), WAIT)
    clock.advance(31)
    claimed_again = asyncio.Event()
    claim = store.claim

    async def claim_and_tell(**options: Any) -> list[Job]:
        jobs = await claim(**options)
        claimed_again.set()
        return jobs

    monkeypatch.setattr(store, "claim", claim_and_tell)
    second = asyncio.create_task(w.run_once())
    await asyncio.wait_for(claimed_again.wait(), WAIT)
    assert (await get(store, job)).attempts == 2
    gate.set()
    assert list(await asyncio.wait_for(asyncio.gather(first, second), WAIT)) == [1, 1]
    assert runs == 1
    assert (await get(store, job)).state is JobState.DONE


async def test_schedulers_enqueue_each_tick_exactly_once(
    store: JobStore, registry: Registry, clock: FakeClock, more_stores: Callable[[], JobStore]
) -> None:
    ran: list[str] = []

    @registry.job("sweep")
    async def sweep(payload: dict[str, Any]) -> None:
        ran.append(current_job().unique_key or "")

    registry.every("sweep-minutely", 60, "sweep", {"batch": 10})
    start = utcnow(clock)  # 2026-01-01T00:00:00Z, on a tick
    workers = [worker(more_stores(), registry, name=f"w{n}") for n in range(3)]

    async def all_tick() -> list[Job]:
        batches = await asyncio.gather(*(w.enqueue_ticks() for w in workers))
        return [job for batch in batches for job in batch]

    expected = []
    for minute in range(4):
        [job] = await all_tick()
        assert job.payload == {"batch": 10}
        expected.append(start + timedelta(minutes=minute))
        assert await all_tick() == []
        clock.advance(30)
        assert await all_tick() == [], "enqueued between ticks"
        clock.advance(30)

    # Down for ten minutes and a half: one run for the latest missed tick.
    clock.advance(10 * 60 + 30)
    [catch_up] = await all_tick()
    expected.append(start + timedelta(minutes=14))

    jobs = await store.list(limit=100)
    assert sorted(job.unique_key or "" for job in jobs) == [
        f"sweep-minutely@{tick.isoformat()}" for tick in expected
    ]
    assert catch_up.unique_key == f"sweep-minutely@{expected[-1].isoformat()}"
    runs = await asyncio.gather(*(w.run_once() for w in workers))
    assert sum(runs) == len(expected)
    assert sorted(ran) == sorted(job.unique_key or "" for job in jobs)


async def test_run_enqueues_periodic_ticks(store: JobStore, registry: Registry) -> None:
    ticked = asyncio.Event()

    @registry.job("beat")
    async def beat(payload: dict[str, Any]) -> None:
        ticked.set()

    registry.cron("beat-every-minute", "* * * * *", "beat")
    w = worker(store, registry, poll=0.05)
    task = asyncio.create_task(w.run())
    await asyncio.wait_for(ticked.wait(), WAIT)
    w.stop()
    await asyncio.wait_for(task, WAIT)
    assert w.stats.done == 1
