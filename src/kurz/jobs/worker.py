"""The worker: claims due jobs, runs their handlers under a lease, and enqueues periodic ticks.

Delivery is at least once. A job's lease (locked_until) is extended by a heartbeat
every lease/3 s while its handler runs; if the worker dies, the lease runs out and
another worker runs the job again. A worker that finds it has lost a lease (it
stalled, and another worker took the job) cancels its own run of that job.

Failures are retried with exponential backoff and full jitter until the job's attempts
run out; then it is kept as dead, with its last error, for `kurz jobs retry`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import traceback
import uuid
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kurz.clock import utcnow
from kurz.jobs.models import Job, JobState
from kurz.jobs.registry import Kind, Registry
from kurz.jobs.store import JobStore

log = logging.getLogger(__name__)

# The store keeps up to 10,000 characters; the end of a traceback says the most.
MAX_ERROR = 8_000

_current_job: ContextVar[Job] = ContextVar("kurz_current_job")


def current_job() -> Job:
    """The job the calling handler runs for: its id, attempts, unique key, ..."""
    try:
        return _current_job.get()
    except LookupError:
        raise RuntimeError("current_job() is only available inside a job handler") from None


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter: after failed attempt n, wait a uniformly random
    time in [0, min(cap, base * 2**(n-1))].

    Full jitter spreads the retries of jobs that failed together (say, while a
    dependency was down) over the whole window, instead of retrying them in waves.
    """

    base: float = 1.0
    cap: float = 3600.0
    # A number in [0, 1); tests pass a constant.
    rng: Callable[[], float] = random.random

    def delay(self, attempts: int) -> float:
        # 2.0**n overflows a float past n = 1023; the cap is long reached by then.
        ceiling = self.cap if attempts > 64 else min(self.cap, self.base * 2.0 ** (attempts - 1))
        return self.rng() * ceiling


@dataclass(slots=True)
class WorkerStats:
    """What one worker has done since it started, for /metrics."""

    # Handlers that succeeded and were recorded as done.
    done: int = 0
    # Failed attempts, including timeouts, unknown kinds and those that left the job dead.
    failed: int = 0
    timed_out: int = 0
    dead: int = 0
    # Runs this worker gave up because another worker took the job's lease.
    lost: int = 0
    # Unfinished jobs given back at shutdown.
    released: int = 0


@dataclass(eq=False, slots=True)
class _Run:
    job: Job
    # Epoch seconds by the store's clock, as far as this worker knows.
    lease_until: float
    task: asyncio.Task[None] = field(init=False)
    # The handler has returned: what is left is recording the outcome, not cancelled.
    reporting: bool = False
    lost: bool = False


def default_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Runs jobs from a JobStore with the handlers of a Registry, until stop()."""

    def __init__(
        self,
        store: JobStore,
        registry: Registry,
        *,
        name: str | None = None,
        queues: Sequence[str] | None = None,
        concurrency: int = 4,
        lease: float = 30.0,
        poll: float = 1.0,
        shutdown_timeout: float = 10.0,
        backoff: Backoff | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if not (lease > 0 and poll > 0 and shutdown_timeout >= 0):
            raise ValueError("lease and poll must be positive, shutdown_timeout not negative")
        self.store = store
        self.registry = registry
        self.name = name or default_name()
        self.queues = list(queues) if queues is not None else None
        self.concurrency = concurrency
        self.lease = lease
        self.poll = poll
        self.shutdown_timeout = shutdown_timeout
        self.backoff = backoff or Backoff()
        self.stats = WorkerStats()
        self._clock = store.clock
        self._runs: dict[int, _Run] = {}
        self._stopping = asyncio.Event()
        # Set when a run ends (a slot is free) or on stop(): cuts an idle wait short.
        self._wake = asyncio.Event()
        self._ticked: dict[str, datetime] = {}

    @property
    def running(self) -> int:
        return len(self._runs)

    def stop(self) -> None:
        """Stop claiming; run() then finishes or releases what is running, and returns."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Claim and run jobs, and enqueue periodic ticks, until stop() (or cancellation)."""
        heartbeat = asyncio.create_task(self._heartbeats(), name=f"{self.name} heartbeat")
        scheduler = asyncio.create_task(self._scheduler(), name=f"{self.name} scheduler")
        try:
            # Listening before the first claim: an enqueue between them is heard.
            await self._listening()
            while not self._stopping.is_set():
                self._wake.clear()
                free = self.concurrency - len(self._runs)
                if free <= 0:
                    await self._idle(listen=False)
                    continue
                # Read before the claim: an enqueue heard after it ends the wait below.
                heard = self.store.wakeups.heard
                try:
                    claimed = await self._claim(free)
                except Exception:
                    log.exception("worker %s could not claim jobs; trying again", self.name)
                    await self._idle(listen=False)
                    continue
                # A full batch suggests more are due: claim again at once.
                if claimed < free:
                    await self._idle(listen=True, since=heard)
        finally:
            await _cancel(scheduler)
            # Leases must outlive the wait for running jobs.
            await self._drain()
            await _cancel(heartbeat)

    async def run_once(self) -> int:
        """Enqueue due ticks, claim one batch and run it to the end; the number of jobs run.

        One pass of run() without its heartbeat, for tests and one-off runs.
        """
        await self.enqueue_ticks()
        free = self.concurrency - len(self._runs)
        jobs = await self.store.claim(
            worker=self.name, limit=free, lease=self.lease, queues=self.queues
        )
        runs = [self._start(job) for job in jobs]
        if runs:
            await asyncio.wait([run.task for run in runs])
        return len(jobs)

    async def enqueue_ticks(self) -> list[Job]:
        """Enqueue each schedule's latest due tick, unless some scheduler already did."""
        now = utcnow(self._clock)
        enqueued = []
        for periodic in self.registry.schedules.values():
            tick = periodic.schedule.latest(now)
            # Each process asks the store once per tick, not once per poll.
            if self._ticked.get(periodic.name) == tick:
                continue
            try:
                job = await self.store.enqueue_tick(
                    periodic.name, tick, periodic.kind, periodic.payload, queue=periodic.queue
                )
            except Exception:
                log.exception("could not enqueue schedule %s for %s", periodic.name, tick)
                continue
            self._ticked[periodic.name] = tick
            if job is not None:
                enqueued.append(job)
        return enqueued

    async def extend_leases(self) -> set[int]:
        """One heartbeat: extend the leases of running jobs, and cancel the runs whose lease
        another worker has taken. The ids of the runs cancelled."""
        runs = dict(self._runs)
        if not runs:
            return set()
        now = self._clock()
        try:
            held = await self.store.heartbeat(list(runs), worker=self.name, lease=self.lease)
        except Exception:
            log.exception("worker %s could not extend its leases", self.name)
            # Past its lease, a job may already be running elsewhere.
            held = {job_id for job_id, run in runs.items() if run.lease_until > self._clock()}
        else:
            for job_id in held:
                runs[job_id].lease_until = now + self.lease
        cancelled = set()
        for job_id, run in runs.items():
            if job_id in held or run.reporting or run.task.done() or run.lost:
                continue
            log.warning("worker %s lost the lease of job %s; cancelling its run", self.name, job_id)
            run.lost = True
            run.task.cancel()
            cancelled.add(job_id)
        return cancelled

    async def _claim(self, free: int) -> int:
        jobs = await self.store.claim(
            worker=self.name, limit=free, lease=self.lease, queues=self.queues
        )
        for job in jobs:
            self._start(job)
        return len(jobs)

    async def _idle(self, *, listen: bool, since: int | None = None) -> None:
        """Wait up to `poll` s, or less: for a free slot, stop(), or (listen) a new job,
        one heard since `since` included."""
        waits: list[asyncio.Task[Any]] = [asyncio.create_task(self._wake.wait())]
        if listen:
            waits.append(asyncio.create_task(self._wait_for_jobs(since)))
        try:
            await asyncio.wait(waits, timeout=self.poll, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                await _cancel(task)

    async def _wait_for_jobs(self, since: int | None) -> None:
        try:
            await self.store.wait_for_jobs(self.poll, since=since)
        except Exception:
            log.exception("worker %s could not wait for new jobs; polling", self.name)
            await asyncio.sleep(self.poll)

    async def _listening(self) -> None:
        try:
            await self.store.wakeups.listening()
        except Exception:
            log.exception("worker %s cannot hear enqueues; polling", self.name)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await self.extend_leases()
            except Exception:
                log.exception("worker %s heartbeat failed", self.name)

    async def _scheduler(self) -> None:
        if not self.registry.schedules:
            return
        while True:
            await self.enqueue_ticks()
            await asyncio.sleep(self.poll)

    def _start(self, job: Job) -> _Run:
        ongoing = self._runs.get(job.id)
        if ongoing is not None and not ongoing.lost and not ongoing.task.done():
            # This worker took back its own job after the lease ran out (its heartbeats
            # failed): the run in progress holds the lease again; a second copy would
            # only run the job twice.
            ongoing.job = job
            ongoing.lease_until = self._clock() + self.lease
            return ongoing
        run = _Run(job, lease_until=self._clock() + self.lease)
        run.task = asyncio.create_task(self._execute(run), name=f"job {job.id} ({job.kind})")
        self._runs[job.id] = run
        run.task.add_done_callback(lambda _: self._ended(run))
        return run

    def _ended(self, run: _Run) -> None:
        # The same job may be claimed again before a cancelled run has unwound.
        if self._runs.get(run.job.id) is run:
            del self._runs[run.job.id]
        if run.lost:
            self.stats.lost += 1
        if not run.task.cancelled() and (exc := run.task.exception()) is not None:
            log.error("job %s: the worker failed to record its outcome", run.job.id, exc_info=exc)
        self._wake.set()

    async def _execute(self, run: _Run) -> None:
        job = run.job
        kind = self.registry.kinds.get(job.kind)
        if kind is None:
            run.reporting = True
            await self._failed(run, None, f"no handler is registered for job kind {job.kind!r}")
            return
        deadline = asyncio.timeout(kind.timeout)
        token = _current_job.set(job)
        error: str | None = None
        try:
            async with deadline:
                await kind.handler(dict(job.payload))
        except TimeoutError as exc:
            if deadline.expired():
                self.stats.timed_out += 1
                error = f"timed out after {kind.timeout:g} s"
            else:
                error = _describe(exc)
        except Exception as exc:
            error = _describe(exc)
        finally:
            _current_job.reset(token)
        # From here on the run is not cancelled: a lost lease or a shutdown would only
        # interrupt the write that records its outcome.
        run.reporting = True
        if error is not None:
            await self._failed(run, kind, error)
        elif await self.store.complete(job.id, worker=self.name):
            self.stats.done += 1
        else:
            run.lost = True

    async def _failed(self, run: _Run, kind: Kind | None, error: str) -> None:
        job = run.job
        self.stats.failed += 1
        attempts = job.max_attempts
        if kind is not None and kind.max_attempts is not None:
            attempts = min(attempts, kind.max_attempts)
        # An unknown kind is not retried: another try would find no handler either.
        retry_in = None
        if kind is not None and job.attempts < attempts:
            retries = kind.retries or self.backoff.delay
            retry_in = retries(job.attempts)
        state = await self.store.fail(job.id, worker=self.name, error=error, retry_in=retry_in)
        if state is None:
            run.lost = True
        elif state is JobState.DEAD:
            self.stats.dead += 1
            summary = error.rstrip().rsplit("\n", 1)[-1]
            log.error(
                "job %s (%s) is dead after %d attempts: %s", job.id, job.kind, job.attempts, summary
            )
        else:
            log.warning(
                "job %s (%s) failed on attempt %d; retrying in %.1f s",
                job.id,
                job.kind,
                job.attempts,
                retry_in or 0.0,
            )

    async def _drain(self) -> None:
        """Let running jobs finish within shutdown_timeout; cancel and release the rest."""
        runs = list(self._runs.values())
        if not runs:
            return
        await asyncio.wait([run.task for run in runs], timeout=self.shutdown_timeout)
        unfinished = [run for run in runs if not run.task.done() and not run.reporting]
        for run in unfinished:
            run.task.cancel()
        # Runs that are only recording their outcome are let finish; a handler that
        # swallows its cancellation is left to its lease.
        pending = [run.task for run in runs if not run.task.done()]
        if pending:
            await asyncio.wait(pending, timeout=max(self.shutdown_timeout, 1.0))
        for run in unfinished:
            if not run.task.done():
                log.warning("job %s ignored its cancellation; its lease will run out", run.job.id)
                continue
            try:
                if await self.store.release(run.job.id, worker=self.name):
                    self.stats.released += 1
            except Exception:
                log.exception("could not release job %s; its lease will run out", run.job.id)


def _describe(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(exc))
    return text if len(text) <= MAX_ERROR else "...\n" + text[-MAX_ERROR:]


async def _cancel(task: asyncio.Task[Any]) -> None:
    """Cancel a task and wait for it to end; a cancellation of the caller still propagates."""
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("%s failed", task.get_name(), exc_info=exc)
