"""Keyed operations written in steps, each step a transaction that commits with the
answer so far: a retry after a crash resumes where the steps stopped.

One transaction for the writes and their record (kurz.idempotency.store) is what
makes a keyed write exact; an operation too large for one transaction (a batch of
links, kurz.links.batch) keeps that per step instead. Its record says PARTIAL while
it runs, with the entries (JSON texts) its committed steps answered and a lease: the
token of the run that holds the key, and until when. A retry meanwhile is the
in-flight 409; after the lease (a crashed process renews it no more), or once a run
that stopped lets it go, a retry takes the key over and goes on from the entries
recorded. The last step records the whole answer, as a one-step write does (ADR 0004's
amendment on batches).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.clock import utcnow
from kurz.db import READ_COMMITTED
from kurz.db.tables import UTCDateTime
from kurz.errors import Problem
from kurz.idempotency.record import DONE, Keyed, replayed_problem
from kurz.idempotency.store import Idempotency, in_flight, reused

# A record's status while its operation is under way (HTTP's 102 Processing).
PARTIAL = 102

# The run holding a key says so at the head of its record (its first 80 characters
# hold the lease): a step reads that, not the entries after it.
_HOLD = """
    SELECT k.status, substr(k.result, 1, 80) AS head FROM idempotency_keys AS k
    WHERE k.principal = :principal AND k.operation = :operation AND k.key = :key
      AND k.expires_at > :now
"""
_HOLD_SQLITE = sa.text(_HOLD).bindparams(sa.bindparam("now", type_=UTCDateTime()))
# Locks the record's row: a step's writes and its record commit under it, so of two
# runs only the one whose token the record names goes on.
_HOLD_PG = sa.text(_HOLD + " FOR UPDATE").bindparams(sa.bindparam("now", type_=UTCDateTime()))
_SAVE = sa.text(
    """
    UPDATE idempotency_keys SET status = :status, result = :result
    WHERE principal = :principal AND operation = :operation AND key = :key
    """
)

Entries = list[str]
Step = Callable[[AsyncConnection], Awaitable[Entries]]


@dataclass
class Run:
    """A stepped operation under way: its key (None: unkeyed), the token of its lease,
    and the entries its steps answered, recorded ones first."""

    keyed: Keyed | None
    token: str = ""
    done: Entries = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Recorded:
    """The whole answer a key's record holds (JSON): the first request with the key
    finished."""

    text: str


def _progress(token: str, until: float, done: Sequence[str]) -> str:
    """A PARTIAL record's JSON: the lease first, then the entries as they were answered."""
    return f'{{"token":"{token}","until":{until!r},"done":[{",".join(done)}]}}'


def _lease(head: str) -> tuple[str, float]:
    """The token and the end (seconds since the epoch) of the lease a record's head names."""
    token, _, rest = head.removeprefix('{"token":"').partition('","until":')
    return token, float(rest.partition(",")[0])


class Steps:
    """Runs keyed operations in steps (kurz.idempotency.steps): each step a write
    transaction that commits with the answer so far."""

    def __init__(self, idempotency: Idempotency) -> None:
        self.idempotency = idempotency
        self.db = idempotency.db

    def _now(self) -> datetime:
        return utcnow(self.idempotency.clock)

    def _until(self, now: datetime) -> float:
        return (now + self.idempotency.lease).timestamp()

    async def begin(self, keyed: Keyed | None) -> Run | Recorded:
        """The run to go on with: from the start, or from where an earlier request with
        the key stopped; or the answer the key's record holds (a replay)."""
        if keyed is None:
            return Run(None)
        run = Run(keyed, uuid.uuid4().hex)
        store = self.idempotency
        async with self.db.write(READ_COMMITTED) as conn:
            now = self._now()
            record = await store.claim(conn, keyed, now)
            if record is None:
                if not await store.insert(conn, keyed, PARTIAL, self._save(run, now), now):
                    raise in_flight()
                return run
            if record.fingerprint != keyed.fingerprint:
                raise reused()
            if record.status == DONE:
                return Recorded(record.result)
            if record.status != PARTIAL:
                raise replayed_problem(record.status, record.result)
            progress = json.loads(record.result)
            left = progress["until"] - now.timestamp()
            if left > 0:
                raise in_flight(max(1, math.ceil(left)))
            # The run that held the key stopped, or its process died: go on from there.
            run.done = [
                json.dumps(entry, separators=(",", ":"), ensure_ascii=False)
                for entry in progress["done"]
            ]
            await conn.execute(_SAVE, self._params(run, PARTIAL, self._save(run, now)))
        return run

    def _save(self, run: Run, now: datetime, done: Sequence[str] | None = None) -> str:
        return _progress(run.token, self._until(now), run.done if done is None else done)

    def _params(self, run: Run, status: int, result: str) -> dict[str, object]:
        assert run.keyed is not None
        return {**run.keyed.params(), "status": status, "result": result}

    async def _hold(self, conn: AsyncConnection, run: Run) -> None:
        """Go on only while the key's record names this run (else the in-flight 409)."""
        assert run.keyed is not None
        hold = _HOLD_SQLITE if self.db.is_sqlite else _HOLD_PG
        params = {**run.keyed.params(), "now": self._now()}
        row = (await conn.execute(hold, params)).first()
        if row is None or row.status != PARTIAL or _lease(row.head)[0] != run.token:
            raise in_flight()

    async def step(
        self, run: Run, operation: Step, *, answer: Callable[[Entries], str] | None = None
    ) -> Entries:
        """`operation`'s entries, written in one transaction with the record of them; with
        `answer` (the last step), the record takes the whole answer, made of every entry."""
        async with self.db.write(READ_COMMITTED) as conn:
            if run.keyed is not None:
                await self._hold(conn, run)
            entries = await operation(conn)
            if run.keyed is not None:
                done = run.done + entries
                if answer is None:
                    saved = self._params(run, PARTIAL, self._save(run, self._now(), done))
                else:
                    saved = self._params(run, DONE, answer(done))
                await conn.execute(_SAVE, saved)
        run.done.extend(entries)
        return entries

    async def release(self, run: Run) -> None:
        """Let a retry take the key over at once: `run` stopped, and writes no more."""
        if run.keyed is None:
            return
        try:
            async with self.db.write(READ_COMMITTED) as conn:
                await self._hold(conn, run)
                await conn.execute(_SAVE, self._params(run, PARTIAL, _progress("", 0.0, run.done)))
        except Problem:
            pass  # another run holds the key, or the database does not answer: the lease ends
