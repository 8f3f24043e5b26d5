"""Jobs in SQL: enqueue (in the caller's transaction if asked), claim with a lease, finish.

The same statements serve SQLite and PostgreSQL. Claims differ only where the
databases do: PostgreSQL locks the rows it picks with FOR UPDATE SKIP LOCKED, so
concurrent workers pick different jobs without waiting for each other; SQLite runs
every write transaction alone (BEGIN IMMEDIATE), so two workers can never pick the
same job. On PostgreSQL an enqueue also wakes the idle workers (kurz.jobs.wakeups).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import job_schedules, jobs
from kurz.jobs.models import Job, JobState
from kurz.jobs.wakeups import Wakeups, notify
from kurz.types import Clock

QUEUED, RUNNING, DONE, DEAD = (state.value for state in JobState)
_UNFINISHED = sa.text("state IN ('queued', 'running') AND unique_key IS NOT NULL")


# Built once: the statement a batch of completions runs (ids, worker, now).
_COMPLETE = (
    sa.update(jobs)
    .where(
        jobs.c.id.in_(sa.bindparam("ids", expanding=True)),
        jobs.c.locked_by == sa.bindparam("worker"),
        jobs.c.state == RUNNING,
    )
    .values(state=DONE, locked_by=None, locked_until=None, finished_at=sa.bindparam("now"))
    .returning(jobs.c.id)
)


class JobStore:
    """Durable jobs in the service's database, for any number of worker processes."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._insert = sqlite.insert if db.is_sqlite else postgresql.insert
        self.wakeups = Wakeups(db)
        # Completions waiting for their batch's UPDATE, by worker, then job id.
        self._completions: dict[str, dict[int, asyncio.Future[bool]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def _write(self, conn: AsyncConnection | None) -> AsyncIterator[AsyncConnection]:
        if conn is not None:
            yield conn
            return
        async with self.db.write(READ_COMMITTED) as own:
            yield own

    async def enqueue(
        self,
        kind: str,
        payload: Mapping[str, Any] | None = None,
        *,
        queue: str = "default",
        priority: int = 0,
        delay: float = 0.0,
        max_attempts: int = 5,
        unique_key: str | None = None,
        conn: AsyncConnection | None = None,
    ) -> Job:
        """Add a job; with `conn`, as part of that transaction (it exists iff it commits).

        With a `unique_key` that an unfinished job already has, nothing is added and
        that job is returned.
        """
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        now = utcnow(self.clock)
        row = {
            "kind": kind,
            "queue": queue,
            "payload": json.dumps(dict(payload or {}), separators=(",", ":")),
            "priority": priority,
            "run_at": now + timedelta(seconds=max(0.0, delay)),
            "state": QUEUED,
            "attempts": 0,
            "max_attempts": max_attempts,
            "unique_key": unique_key,
            "created_at": now,
        }
        insert = self._insert(jobs).values(**row)
        if unique_key is not None:
            insert = insert.on_conflict_do_nothing(
                index_elements=[jobs.c.unique_key], index_where=_UNFINISHED
            )
        async with self._write(conn) as tx:
            added = (await tx.execute(insert.returning(*jobs.c))).first()
            if added is None:
                existing = (
                    await tx.execute(
                        sa.select(*jobs.c).where(
                            jobs.c.unique_key == unique_key, jobs.c.state.in_((QUEUED, RUNNING))
                        )
                    )
                ).one()
                return Job.from_row(existing)
            if not self.db.is_sqlite:
                await notify(tx, queue)
            return Job.from_row(added)

    async def claim(
        self, *, worker: str, limit: int, lease: float, queues: Sequence[str] | None = None
    ) -> list[Job]:
        """Up to `limit` due jobs, highest priority first, held by `worker` for `lease` s.

        Due: queued with run_at passed, or running with a lease that ran out (its worker
        died or hung). A job whose lease ran out on its last attempt is dead instead.
        """
        now = utcnow(self.clock)
        lease_ran_out = sa.and_(jobs.c.state == RUNNING, jobs.c.locked_until < now)
        due = sa.or_(sa.and_(jobs.c.state == QUEUED, jobs.c.run_at <= now), lease_ran_out)
        picked = (
            sa.select(jobs.c.id)
            .where(due, jobs.c.attempts < jobs.c.max_attempts)
            .order_by(jobs.c.priority.desc(), jobs.c.run_at, jobs.c.id)
            .limit(limit)
        )
        if queues is not None:
            picked = picked.where(jobs.c.queue.in_(queues))
        if not self.db.is_sqlite:
            picked = picked.with_for_update(skip_locked=True)
        claim = (
            sa.update(jobs)
            .where(jobs.c.id.in_(picked.scalar_subquery()))
            .values(
                state=RUNNING,
                attempts=jobs.c.attempts + 1,
                locked_by=worker,
                locked_until=now + timedelta(seconds=lease),
            )
            .returning(*jobs.c)
        )
        async with self.db.write(READ_COMMITTED) as conn:
            await conn.execute(
                sa.update(jobs)
                .where(lease_ran_out, jobs.c.attempts >= jobs.c.max_attempts)
                .values(
                    state=DEAD,
                    last_error="its worker stopped answering on the last attempt (lease ran out)",
                    locked_by=None,
                    locked_until=None,
                    finished_at=now,
                )
            )
            rows = (await conn.execute(claim)).all()
        claimed = [Job.from_row(row) for row in rows]
        claimed.sort(key=lambda job: (-job.priority, job.run_at, job.id))
        return claimed

    def _held(self, job_id: int, worker: str) -> sa.ColumnElement[bool]:
        return sa.and_(jobs.c.id == job_id, jobs.c.locked_by == worker, jobs.c.state == RUNNING)

    async def heartbeat(self, job_ids: Sequence[int], *, worker: str, lease: float) -> set[int]:
        """Extend the leases `worker` still holds; the ids it still holds."""
        if not job_ids:
            return set()
        until = utcnow(self.clock) + timedelta(seconds=lease)
        async with self.db.write(READ_COMMITTED) as conn:
            rows = await conn.execute(
                sa.update(jobs)
                .where(jobs.c.id.in_(job_ids), jobs.c.locked_by == worker, jobs.c.state == RUNNING)
                .values(locked_until=until)
                .returning(jobs.c.id)
            )
            return {row.id for row in rows}

    async def complete(self, job_id: int, *, worker: str) -> bool:
        """Mark a job done; False if `worker` no longer held it (its lease was taken).

        Completions asked for in the same turn of the event loop are written by one
        UPDATE: a worker whose jobs end together (a batch of quick ones) pays for one
        transaction, not one each (ADR 0008 has the figures).
        """
        loop = asyncio.get_running_loop()
        batch = self._completions.get(worker)
        if batch is None:
            batch = self._completions[worker] = {}
            # Runs in the next turn, after every job that ended in this one has asked.
            flush = loop.create_task(self._complete_batch(worker))
            self._tasks.add(flush)
            flush.add_done_callback(self._tasks.discard)
        answer = batch.get(job_id)
        if answer is None:
            answer = batch[job_id] = loop.create_future()
        # Shielded: a caller that gives up leaves the write, and the others' answers, alone.
        return await asyncio.shield(answer)

    async def _complete_batch(self, worker: str) -> None:
        batch = self._completions.pop(worker)
        try:
            async with self.db.write(READ_COMMITTED) as conn:
                rows = await conn.execute(
                    _COMPLETE,
                    {"ids": list(batch), "worker": worker, "now": utcnow(self.clock)},
                )
                done = {row.id for row in rows}
        except BaseException as exc:
            for answer in batch.values():
                if not answer.done():
                    answer.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for job_id, answer in batch.items():
            if not answer.done():
                answer.set_result(job_id in done)

    async def fail(
        self, job_id: int, *, worker: str, error: str, retry_in: float | None
    ) -> JobState | None:
        """Record a failed attempt: queued again after `retry_in` s, or dead when out of
        attempts or `retry_in` is None. None if `worker` no longer held the job."""
        now = utcnow(self.clock)
        dies = sa.true() if retry_in is None else jobs.c.attempts >= jobs.c.max_attempts
        async with self.db.write(READ_COMMITTED) as conn:
            result = await conn.execute(
                sa.update(jobs)
                .where(self._held(job_id, worker))
                .values(
                    state=sa.case((dies, DEAD), else_=QUEUED),
                    run_at=now + timedelta(seconds=retry_in or 0.0),
                    finished_at=sa.case((dies, now), else_=None),
                    last_error=error[:10_000],
                    locked_by=None,
                    locked_until=None,
                )
                .returning(jobs.c.state)
            )
            row = result.first()
        return None if row is None else JobState(row.state)

    async def release(self, job_id: int, *, worker: str) -> bool:
        """Give a job back unfinished (a graceful shutdown): this attempt does not count."""
        async with self.db.write(READ_COMMITTED) as conn:
            result = await conn.execute(
                sa.update(jobs)
                .where(self._held(job_id, worker))
                .values(
                    state=QUEUED,
                    attempts=jobs.c.attempts - 1,
                    run_at=utcnow(self.clock),
                    locked_by=None,
                    locked_until=None,
                )
                .returning(jobs.c.id)
            )
            return result.first() is not None

    async def retry(self, job_id: int) -> bool:
        """Queue a dead job again with fresh attempts; False if it is not dead.

        Also False if an unfinished job with the same unique key exists by now.
        """
        async with self.db.write(READ_COMMITTED) as conn:
            dead = (
                await conn.execute(
                    sa.select(jobs.c.unique_key).where(jobs.c.id == job_id, jobs.c.state == DEAD)
                )
            ).first()
            if dead is None:
                return False
            if dead.unique_key is not None:
                twin = await conn.execute(
                    sa.select(jobs.c.id).where(
                        jobs.c.unique_key == dead.unique_key, jobs.c.state.in_((QUEUED, RUNNING))
                    )
                )
                if twin.first() is not None:
                    return False
            await conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == job_id)
                .values(state=QUEUED, attempts=0, run_at=utcnow(self.clock), finished_at=None)
            )
            if not self.db.is_sqlite:
                await notify(conn, "retry")
            return True

    async def get(self, job_id: int) -> Job | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(*jobs.c).where(jobs.c.id == job_id))).first()
        return None if row is None else Job.from_row(row)

    async def list(
        self, *, state: JobState | None = None, queue: str | None = None, limit: int = 100
    ) -> list[Job]:
        """Newest first."""
        query = sa.select(*jobs.c).order_by(jobs.c.id.desc()).limit(limit)
        if state is not None:
            query = query.where(jobs.c.state == state.value)
        if queue is not None:
            query = query.where(jobs.c.queue == queue)
        async with self.db.read() as conn:
            return [Job.from_row(row) for row in await conn.execute(query)]

    async def counts(self) -> dict[tuple[str, JobState], int]:
        """Jobs per (queue, state)."""
        query = sa.select(jobs.c.queue, jobs.c.state, sa.func.count()).group_by(
            jobs.c.queue, jobs.c.state
        )
        async with self.db.read() as conn:
            rows = await conn.execute(query)
            return {(queue, JobState(state)): int(n) for queue, state, n in rows}

    async def oldest_due_age(self, queue: str | None = None) -> float | None:
        """Seconds the longest-waiting due job has been due; None when none is."""
        now = utcnow(self.clock)
        query = sa.select(sa.func.min(jobs.c.run_at)).where(
            jobs.c.state == QUEUED, jobs.c.run_at <= now
        )
        if queue is not None:
            query = query.where(jobs.c.queue == queue)
        async with self.db.read() as conn:
            oldest: datetime | None = (await conn.execute(query)).scalar()
        return None if oldest is None else (now - oldest).total_seconds()

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
        """Enqueue `schedule`'s job for `tick`, unless a scheduler already enqueued it or
        a later tick; None then. Exactly once per tick, however many schedulers run."""
        async with self.db.write(READ_COMMITTED) as conn:
            moved = await conn.execute(
                sa.update(job_schedules)
                .where(job_schedules.c.name == schedule, job_schedules.c.last_tick < tick)
                .values(last_tick=tick)
                .returning(job_schedules.c.name)
            )
            if moved.first() is None:
                first = await conn.execute(
                    self._insert(job_schedules)
                    .values(name=schedule, last_tick=tick)
                    .on_conflict_do_nothing(index_elements=[job_schedules.c.name])
                    .returning(job_schedules.c.name)
                )
                if first.first() is None:
                    return None
            return await self.enqueue(
                kind,
                payload,
                queue=queue,
                max_attempts=max_attempts,
                unique_key=f"{schedule}@{tick.isoformat()}",
                conn=conn,
            )

    async def wait_for_jobs(self, seconds: float, /, *, since: int | None = None) -> None:
        """Sleep up to `seconds`; on PostgreSQL, wake as soon as a job is enqueued, or at
        once if one was since `wakeups.heard` was `since` (Wakeups.wait)."""
        await self.wakeups.wait(seconds, since=since)

    async def close(self) -> None:
        await self.wakeups.close()
