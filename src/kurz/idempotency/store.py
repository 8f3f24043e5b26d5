"""Idempotent writes: a keyed operation runs once, and its answer is recorded with it.

The operation's writes and the record commit in one transaction, so there is no state
between "done" and "recorded" for a crash to leave behind. The record is the API's
business no more than the operation is: a result or a Problem, as JSON (kurz.idempotency
.record; docs/decisions/0004-idempotency.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import UTCDateTime
from kurz.db.tables import idempotency_keys as keys
from kurz.errors import Problem
from kurz.idempotency.record import DONE, Done, Keyed, R, problem_json, replay
from kurz.types import Clock

PURGE_BATCH = 1000

# The statements a keyed write runs are written out once, as text with typed
# parameters: built from SQLAlchemy constructs on every request they cost a keyed
# write a measurable share of its time (docs/decisions/0004-idempotency.md). The same
# SQL serves SQLite and PostgreSQL.
_NOW = sa.bindparam("now", type_=UTCDateTime())

_LOOKUP = sa.text(
    """
    SELECT k.fingerprint, k.status, k.result FROM idempotency_keys AS k
    WHERE k.principal = :principal AND k.operation = :operation AND k.key = :key
      AND k.expires_at > :now
    """
).bindparams(_NOW)

# One statement takes the key's lock (a transaction-scoped advisory lock, so that a
# crashed request's lock goes with its connection), bounds how long a stalled client
# may hold it, and reads what is recorded. The read's snapshot may predate a commit
# that lands before the lock is granted; the INSERT's unique key catches that case.
_PG_LOCK_AND_READ = sa.text(
    """
    SELECT l.locked, k.fingerprint, k.status, k.result
    FROM (
        SELECT pg_try_advisory_xact_lock(:lock_id) AS locked,
               set_config('idle_in_transaction_session_timeout', :idle_ms, true),
               set_config('client_connection_check_interval', :check_ms, true)
    ) AS l
    LEFT JOIN idempotency_keys AS k
      ON k.principal = :principal AND k.operation = :operation AND k.key = :key
     AND k.expires_at > :now
    """
).bindparams(_NOW)

# An expired record not yet purged is replaced; a live one wins (no row returned).
_STORE = sa.text(
    """
    INSERT INTO idempotency_keys AS k
        (principal, operation, key, fingerprint, status, result, created_at, expires_at)
    VALUES (:principal, :operation, :key, :fingerprint, :status, :result, :now, :expires_at)
    ON CONFLICT (principal, operation, key) DO UPDATE SET
        fingerprint = excluded.fingerprint, status = excluded.status,
        result = excluded.result, created_at = excluded.created_at,
        expires_at = excluded.expires_at
    WHERE k.expires_at <= :now
    RETURNING key
    """
).bindparams(_NOW, sa.bindparam("expires_at", type_=UTCDateTime()))


class Record(NamedTuple):
    """A record as read: the answer it holds, for input with this fingerprint."""

    fingerprint: str
    status: int
    result: str

    def answer(self, keyed: Keyed, result: type[R]) -> Done[R]:
        """The recorded answer, if `keyed` is the request that recorded it."""
        if self.fingerprint != keyed.fingerprint:
            raise reused()
        return replay(self.status, self.result, result)


Operation = Callable[[AsyncConnection], Awaitable[R]]


IN_FLIGHT = "idempotency-key-in-use"


def in_flight(retry_after: int = 1) -> Problem:
    return Problem(
        409,
        IN_FLIGHT,
        "Idempotency Key In Use",
        "A request with this Idempotency-Key is still being processed; retry it shortly.",
        headers={"Retry-After": str(retry_after)},
    )


def reused() -> Problem:
    return Problem(
        422,
        "idempotency-key-reused",
        "Idempotency Key Reused",
        "This Idempotency-Key was sent before with a different request body; "
        "a new request needs a new key.",
    )


class _LostRace(Exception):
    """Another request recorded an answer for the key after this one looked."""


class _Refused(Exception):
    """The operation answered with a Problem that is kept: its writes are undone."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.status)
        self.problem = problem


class Idempotency:
    """Runs write operations so that a retried request is answered, not repeated."""

    def __init__(
        self, db: Database, clock: Clock, *, ttl: float, lock_timeout: float = 10.0
    ) -> None:
        self.db = db
        self.clock = clock
        self.ttl = timedelta(seconds=ttl)
        self._idle_ms = str(max(1, round(lock_timeout * 1000)))
        # How long a keyed operation in steps (kurz.idempotency.steps) keeps its key
        # between two steps: past it, a retry takes the key over.
        self.lease = timedelta(seconds=lock_timeout)
        # A PostgreSQL backend waiting inside a statement notices a vanished client
        # only when it checks; once a second is cheap.
        self._check_ms = "1000"

    async def run(
        self, operation: Operation[R], keyed: Keyed | None, *, result: type[R]
    ) -> Done[R]:
        """Run `operation` in a write transaction; with a key, at most once per key.

        The operation's Problems (4xx except 429) are recorded and replayed like
        results: raised again as a ReplayedProblem. A 429, a 5xx or any other
        exception records nothing, so that a retry may succeed.
        """
        if keyed is None:
            async with self.db.write(READ_COMMITTED) as conn:
                return Done(await operation(conn))
        try:
            async with self.db.write(READ_COMMITTED) as conn:
                return await self._run_keyed(conn, operation, keyed, result)
        except _LostRace:
            pass
        except _Refused as refused:
            return await self._record_refusal(keyed, refused.problem, result)
        async with self.db.read() as conn:
            record = await self._lookup(conn, keyed, utcnow(self.clock))
        if record is None:
            raise in_flight()
        return record.answer(keyed, result)

    async def _run_keyed(
        self, conn: AsyncConnection, operation: Operation[R], keyed: Keyed, result: type[R]
    ) -> Done[R]:
        now = utcnow(self.clock)
        record = await self.claim(conn, keyed, now)
        if record is not None:
            return record.answer(keyed, result)
        try:
            value = await operation(conn)
        except Problem as problem:
            if problem.status == 429 or problem.status >= 500:
                raise
            # Refused: whatever the operation wrote goes with this transaction, and
            # its answer is recorded by a second one (no savepoint on the happy path).
            raise _Refused(problem) from None
        if not await self.insert(conn, keyed, DONE, value.model_dump_json(), now):
            raise _LostRace
        return Done(value)

    async def _record_refusal(self, keyed: Keyed, problem: Problem, result: type[R]) -> Done[R]:
        """Keep a refused request's Problem and raise it, unless another request settled
        the key first (then its answer is this one's)."""
        async with self.db.write(READ_COMMITTED) as conn:
            now = utcnow(self.clock)
            try:
                record = await self.claim(conn, keyed, now)
            except Problem as exc:
                if exc.slug != IN_FLIGHT:
                    raise
                # A retry is running now; what it records is the key's answer.
                raise problem from None
            if record is not None:
                return record.answer(keyed, result)
            await self.insert(conn, keyed, problem.status, problem_json(problem), now)
        raise problem

    async def claim(self, conn: AsyncConnection, keyed: Keyed, now: datetime) -> Record | None:
        """The key's record; else the key is this transaction's until it ends.

        Raises the in-flight 409 when another transaction holds the key.
        """
        if self.db.is_sqlite:
            # BEGIN IMMEDIATE already holds the database's write lock: no other
            # request can be in flight, so a concurrent retry waits and then replays.
            return await self._lookup(conn, keyed, now)
        return await self._lock_and_lookup(conn, keyed, now)

    async def _lock_and_lookup(
        self, conn: AsyncConnection, keyed: Keyed, now: datetime
    ) -> Record | None:
        params = {
            **keyed.params(),
            "lock_id": keyed.lock_id(),
            "idle_ms": self._idle_ms,
            "check_ms": self._check_ms,
            "now": now,
        }
        row = (await conn.execute(_PG_LOCK_AND_READ, params)).one()
        if row.fingerprint is not None:
            # Recorded already: a replay needs no lock, so concurrent replays never
            # turn each other away.
            return Record(row.fingerprint, row.status, row.result)
        if not row.locked:
            raise in_flight()
        return None

    async def _lookup(self, conn: AsyncConnection, keyed: Keyed, now: datetime) -> Record | None:
        row = (await conn.execute(_LOOKUP, {**keyed.params(), "now": now})).first()
        if row is None:
            return None
        return Record(row.fingerprint, row.status, row.result)

    async def insert(
        self, conn: AsyncConnection, keyed: Keyed, status: int, result: str, now: datetime
    ) -> bool:
        """Record the answer; False if a live record for the key is there already."""
        params = {
            **keyed.params(),
            "fingerprint": keyed.fingerprint,
            "status": status,
            "result": result,
            "now": now,
            "expires_at": now + self.ttl,
        }
        return (await conn.execute(_STORE, params)).first() is not None

    async def purge(self) -> int:
        """Delete expired records, a batch per transaction so writers never wait long."""
        pk = (keys.c.principal, keys.c.operation, keys.c.key)
        total = 0
        while True:
            batch = sa.select(*pk).where(keys.c.expires_at <= utcnow(self.clock)).limit(PURGE_BATCH)
            async with self.db.write(READ_COMMITTED) as conn:
                deleted = (
                    await conn.execute(sa.delete(keys).where(sa.tuple_(*pk).in_(batch)))
                ).rowcount
            total += deleted
            if deleted < PURGE_BATCH:
                return total
