"""Idempotent writes: a keyed request runs once, and its response is stored with it.

The operation's writes and the stored response commit in one transaction, so there
is no state between "done" and "recorded" for a crash to leave behind
(docs/decisions/0004-idempotency.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import UTCDateTime
from kurz.db.tables import idempotency_keys as keys
from kurz.errors import Problem
from kurz.types import Clock

# The response headers a replay repeats; the rest are the server's, made afresh.
KEPT_HEADERS = frozenset({"content-type", "location", "etag"})
REPLAYED = "Idempotent-Replayed"
PURGE_BATCH = 1000

# The statements a keyed request runs are written out once, as text with typed
# parameters. Built from SQLAlchemy constructs on every request, they held keyed
# POSTs to 0.75-0.76 of unkeyed ones, against 0.85-0.89 written out
# (docs/decisions/0004-idempotency.md). The same SQL serves SQLite and PostgreSQL.
_NOW = sa.bindparam("now", type_=UTCDateTime())

_LOOKUP = sa.text(
    """
    SELECT k.fingerprint, k.status, k.headers, k.body FROM idempotency_keys AS k
    WHERE k.scope = :scope AND k.key = :key AND k.method = :method AND k.path = :path
      AND k.expires_at > :now
    """
).bindparams(_NOW)

# One statement takes the key's lock (a transaction-scoped advisory lock, so that a
# crashed request's lock goes with its connection), bounds how long a stalled client
# may hold it, and reads what is stored. The read's snapshot may predate a commit
# that lands before the lock is granted; the INSERT's unique key catches that case.
_PG_LOCK_AND_READ = sa.text(
    """
    SELECT l.locked, k.fingerprint, k.status, k.headers, k.body
    FROM (
        SELECT pg_try_advisory_xact_lock(:lock_id) AS locked,
               set_config('idle_in_transaction_session_timeout', :idle_ms, true),
               set_config('client_connection_check_interval', :check_ms, true)
    ) AS l
    LEFT JOIN idempotency_keys AS k
      ON k.scope = :scope AND k.key = :key AND k.method = :method AND k.path = :path
     AND k.expires_at > :now
    """
).bindparams(_NOW)

# An expired response not yet purged is replaced; a live one wins (no row returned).
_STORE = sa.text(
    """
    INSERT INTO idempotency_keys AS k
        (scope, key, method, path, fingerprint, status, headers, body, created_at, expires_at)
    VALUES (:scope, :key, :method, :path, :fingerprint, :status, :headers, :body, :now,
            :expires_at)
    ON CONFLICT (scope, key, method, path) DO UPDATE SET
        fingerprint = excluded.fingerprint, status = excluded.status,
        headers = excluded.headers, body = excluded.body,
        created_at = excluded.created_at, expires_at = excluded.expires_at
    WHERE k.expires_at <= :now
    RETURNING scope
    """
).bindparams(
    _NOW,
    sa.bindparam("body", type_=sa.LargeBinary()),
    sa.bindparam("expires_at", type_=UTCDateTime()),
)


@dataclass(frozen=True, slots=True)
class Stored:
    """A response as it was sent, and as a replay sends it again byte for byte."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    replayed: bool = False

    @classmethod
    def of(cls, response: Response) -> Stored:
        kept = tuple(
            (name, value) for name, value in response.headers.items() if name in KEPT_HEADERS
        )
        return cls(response.status_code, kept, bytes(response.body))

    def response(self) -> Response:
        headers = dict(self.headers)
        if self.replayed:
            headers[REPLAYED] = "true"
        return Response(self.body, self.status, headers=headers)


@dataclass(frozen=True, slots=True)
class Keyed:
    """A request's Idempotency-Key, where it applies, and the payload it is bound to."""

    caller: str
    method: str
    path: str
    key: str
    fingerprint: str

    def lock_id(self) -> int:
        """A signed 64-bit id for PostgreSQL's advisory lock on this key."""
        raw = "\x00".join((self.caller, self.method, self.path, self.key)).encode()
        return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big", signed=True)

    def params(self) -> dict[str, str]:
        return {"scope": self.caller, "key": self.key, "method": self.method, "path": self.path}


Operation = Callable[[AsyncConnection], Awaitable[Response]]


IN_FLIGHT = "idempotency-key-in-use"


def in_flight() -> Problem:
    return Problem(
        409,
        IN_FLIGHT,
        "Idempotency Key In Use",
        "A request with this Idempotency-Key is still being processed; retry it shortly.",
        headers={"Retry-After": "1"},
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
    """Another request stored a response for the key after this one looked."""


class _Refused(Exception):
    """The operation answered with a Problem that is kept: its writes are undone."""

    def __init__(self, stored: Stored) -> None:
        super().__init__(stored.status)
        self.stored = stored


class Idempotency:
    """Runs write operations so that a retried request is answered, not repeated."""

    def __init__(
        self, db: Database, clock: Clock, *, ttl: float, lock_timeout: float = 10.0
    ) -> None:
        self.db = db
        self.clock = clock
        self.ttl = timedelta(seconds=ttl)
        self._idle_ms = str(max(1, round(lock_timeout * 1000)))
        # A PostgreSQL backend waiting inside a statement notices a vanished client
        # only when it checks; once a second is cheap.
        self._check_ms = "1000"

    async def run(self, operation: Operation, keyed: Keyed | None) -> Stored:
        """Run `operation` in a write transaction; with a key, at most once per key.

        The operation's Problems (4xx except 429) are stored and replayed like
        successes; a 429, a 5xx or any other exception stores nothing, so that a
        retry may succeed.
        """
        if keyed is None:
            async with self.db.write(READ_COMMITTED) as conn:
                return Stored.of(await operation(conn))
        try:
            async with self.db.write(READ_COMMITTED) as conn:
                return await self._run_keyed(conn, operation, keyed)
        except _LostRace:
            pass
        except _Refused as refused:
            return await self._store_refusal(keyed, refused.stored)
        async with self.db.read() as conn:
            stored = await self._lookup(conn, keyed, utcnow(self.clock))
        if stored is None:
            raise in_flight()
        return stored

    async def _run_keyed(self, conn: AsyncConnection, operation: Operation, keyed: Keyed) -> Stored:
        now = utcnow(self.clock)
        stored = await self._claim(conn, keyed, now)
        if stored is not None:
            return stored
        try:
            response = await operation(conn)
        except Problem as problem:
            if problem.status == 429 or problem.status >= 500:
                raise
            # Refused: whatever the operation wrote goes with this transaction, and
            # its answer is stored by a second one (no savepoint on the happy path).
            raise _Refused(Stored.of(problem.response(keyed.path))) from None
        stored = Stored.of(response)
        if not await self._insert(conn, keyed, stored, now):
            raise _LostRace
        return stored

    async def _store_refusal(self, keyed: Keyed, refusal: Stored) -> Stored:
        """Keep a refused request's answer, unless another request settled the key first."""
        async with self.db.write(READ_COMMITTED) as conn:
            now = utcnow(self.clock)
            try:
                stored = await self._claim(conn, keyed, now)
            except Problem as exc:
                if exc.slug != IN_FLIGHT:
                    raise
                # A retry is running now; what it stores is the key's answer.
                return refusal
            if stored is not None:
                return stored
            await self._insert(conn, keyed, refusal, now)
            return refusal

    async def _claim(self, conn: AsyncConnection, keyed: Keyed, now: datetime) -> Stored | None:
        """The key's stored response; else the key is this transaction's until it ends.

        Raises the in-flight 409 when another transaction holds the key.
        """
        if self.db.is_sqlite:
            # BEGIN IMMEDIATE already holds the database's write lock: no other
            # request can be in flight, so a concurrent retry waits and then replays.
            return await self._lookup(conn, keyed, now)
        return await self._lock_and_lookup(conn, keyed, now)

    async def _lock_and_lookup(
        self, conn: AsyncConnection, keyed: Keyed, now: datetime
    ) -> Stored | None:
        params = {
            **keyed.params(),
            "lock_id": keyed.lock_id(),
            "idle_ms": self._idle_ms,
            "check_ms": self._check_ms,
            "now": now,
        }
        row = (await conn.execute(_PG_LOCK_AND_READ, params)).one()
        if row.fingerprint is not None:
            # Stored already: a replay needs no lock, so concurrent replays never
            # turn each other away.
            return _stored(keyed, row.fingerprint, row.status, row.headers, row.body)
        if not row.locked:
            raise in_flight()
        return None

    async def _lookup(self, conn: AsyncConnection, keyed: Keyed, now: datetime) -> Stored | None:
        row = (await conn.execute(_LOOKUP, {**keyed.params(), "now": now})).first()
        if row is None:
            return None
        return _stored(keyed, row.fingerprint, row.status, row.headers, row.body)

    async def _insert(
        self, conn: AsyncConnection, keyed: Keyed, stored: Stored, now: datetime
    ) -> bool:
        """Store the response; False if a live response for the key is there already."""
        params = {
            **keyed.params(),
            "fingerprint": keyed.fingerprint,
            "status": stored.status,
            "headers": json.dumps(stored.headers),
            "body": stored.body,
            "now": now,
            "expires_at": now + self.ttl,
        }
        return (await conn.execute(_STORE, params)).first() is not None

    async def purge(self) -> int:
        """Delete expired keys, a batch per transaction so writers never wait long."""
        pk = (keys.c.scope, keys.c.key, keys.c.method, keys.c.path)
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


def _stored(keyed: Keyed, fingerprint: str, status: int, headers: str, body: bytes) -> Stored:
    if fingerprint != keyed.fingerprint:
        raise reused()
    pairs = tuple((str(name), str(value)) for name, value in json.loads(headers))
    return Stored(status, pairs, bytes(body), replayed=True)
