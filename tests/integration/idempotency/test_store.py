"""kurz.idempotency's store on its own, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import JSONResponse, Response

from kurz.clock import utcnow
from kurz.db import Database
from kurz.db.tables import api_keys, idempotency_keys
from kurz.errors import Problem
from kurz.idempotency import Idempotency, Keyed, store
from tests.support import FakeClock

TTL = 3600.0
# PostgreSQL ends a keyed transaction idle for this long. Far longer than a loaded
# host pauses between two statements: only the test about it waits for it.
LOCK_TIMEOUT = 30.0
# Only so that a broken lock fails the test instead of hanging it.
WAIT = 30.0


def keyed(key: str = "k", fingerprint: str = "f" * 64) -> Keyed:
    return Keyed(caller="key:1", method="POST", path="/things", key=key, fingerprint=fingerprint)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database.from_url(database_url)
    yield database
    await database.dispose()


@pytest.fixture
def idem(db: Database, clock: FakeClock) -> Idempotency:
    return Idempotency(db, clock, ttl=TTL, lock_timeout=LOCK_TIMEOUT)


@pytest.fixture
async def pg_db(postgres_url: str) -> AsyncIterator[Database]:
    """For PostgreSQL's own cases: SQLite's single writer rules them out."""
    database = Database.from_url(postgres_url)
    yield database
    await database.dispose()


@pytest.fixture
def pg_idem(pg_db: Database, clock: FakeClock) -> Idempotency:
    return Idempotency(pg_db, clock, ttl=TTL, lock_timeout=LOCK_TIMEOUT)


def writes(
    clock: FakeClock, name: str, then: Callable[[], Response]
) -> Callable[[AsyncConnection], Awaitable[Response]]:
    """An operation that writes a row, then answers (or raises) what `then` gives."""

    async def operation(conn: AsyncConnection) -> Response:
        await conn.execute(
            sa.insert(api_keys).values(
                name=name, prefix=name, secret_hash=name, created_at=utcnow(clock)
            )
        )
        return then()

    return operation


async def rows(db: Database, table: sa.Table) -> int:
    async with db.read() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


def created() -> Response:
    return JSONResponse({"ok": True}, 201, headers={"Location": "/things/1", "X-Other": "1"})


async def test_a_success_is_stored_with_the_headers_that_matter(
    idem: Idempotency, db: Database, clock: FakeClock
) -> None:
    first = await idem.run(writes(clock, "a", created), keyed())
    assert (first.status, first.body, first.replayed) == (201, b'{"ok":true}', False)
    assert dict(first.headers) == {"content-type": "application/json", "location": "/things/1"}
    again = await idem.run(writes(clock, "b", created), keyed())
    assert again == store.Stored(first.status, first.headers, first.body, replayed=True)
    assert await rows(db, api_keys) == 1


def problem(status: int) -> Callable[[], Response]:
    def raise_it() -> Response:
        raise Problem(status, "x", "X", "x")

    return raise_it


@pytest.mark.parametrize("status", [400, 404, 409, 412, 422])
async def test_a_client_error_is_stored_and_its_writes_undone(
    idem: Idempotency, db: Database, clock: FakeClock, status: int
) -> None:
    first = await idem.run(writes(clock, "a", problem(status)), keyed())
    assert first.status == status
    assert json.loads(first.body)["instance"] == "/things"
    assert await rows(db, api_keys) == 0
    assert await rows(db, idempotency_keys) == 1
    again = await idem.run(writes(clock, "b", created), keyed())
    assert (again.status, again.body, again.replayed) == (status, first.body, True)


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_a_429_or_5xx_is_not_stored(
    idem: Idempotency, db: Database, clock: FakeClock, status: int
) -> None:
    with pytest.raises(Problem):
        await idem.run(writes(clock, "a", problem(status)), keyed())
    assert (await rows(db, api_keys), await rows(db, idempotency_keys)) == (0, 0)
    retried = await idem.run(writes(clock, "b", created), keyed())
    assert (retried.status, retried.replayed) == (201, False)


async def test_a_crashing_operation_stores_nothing(
    idem: Idempotency, db: Database, clock: FakeClock
) -> None:
    def crash() -> Response:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        await idem.run(writes(clock, "a", crash), keyed())
    assert (await rows(db, api_keys), await rows(db, idempotency_keys)) == (0, 0)
    assert (await idem.run(writes(clock, "b", created), keyed())).replayed is False


async def test_without_a_key_the_operation_just_runs(
    idem: Idempotency, db: Database, clock: FakeClock
) -> None:
    for name in "ab":
        assert (await idem.run(writes(clock, name, created), None)).replayed is False
    assert (await rows(db, api_keys), await rows(db, idempotency_keys)) == (2, 0)
    with pytest.raises(Problem):
        await idem.run(writes(clock, "c", problem(409)), None)
    assert await rows(db, api_keys) == 2


class Statements:
    """The statements each SQLite connection began to run, in SQLite's own order (its
    trace hook fires as a statement starts, before it takes any lock)."""

    def __init__(self, db: Database) -> None:
        self.log: list[tuple[int, str]] = []
        self._loop = asyncio.get_running_loop()
        self._logged = asyncio.Event()
        self._connections = itertools.count()
        event.listen(db.engine.sync_engine, "connect", self._trace)

    def _trace(self, dbapi_connection: Any, _record: Any) -> None:
        number = next(self._connections)

        def began(sql: str) -> None:
            # On the connection's own thread, hence the thread-safe wake-up.
            self.log.append((number, sql))
            self._loop.call_soon_threadsafe(self._logged.set)

        dbapi_connection.run_async(lambda connection: connection.set_trace_callback(began))

    def index(self, connection: int, sql: str) -> int:
        return self.log.index((connection, sql))

    async def until(self, predicate: Callable[[list[tuple[int, str]]], bool]) -> None:
        while True:
            self._logged.clear()
            if predicate(self.log):
                return
            await self._logged.wait()


async def test_a_concurrent_retry_is_409_on_postgres_and_waits_on_sqlite(
    idem: Idempotency, db: Database, clock: FakeClock
) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    statements = Statements(db) if db.is_sqlite else None

    async def slow(conn: AsyncConnection) -> Response:
        started.set()
        await release.wait()
        return await writes(clock, "a", created)(conn)

    first = asyncio.create_task(idem.run(slow, keyed()))
    await started.wait()
    if statements is not None:
        [(holder, _)] = [entry for entry in statements.log if entry[1].startswith("BEGIN")]
        second = asyncio.create_task(idem.run(writes(clock, "b", created), keyed()))

        def retry_began(log: list[tuple[int, str]]) -> bool:
            return any(n != holder and sql.startswith("BEGIN") for n, sql in log)

        # The retry has begun its transaction in SQLite while the first request holds
        # the write lock: the database's write lock queues it behind the first.
        await asyncio.wait_for(statements.until(retry_began), WAIT)
        release.set()
        assert (await first).replayed is False
        assert (await second).replayed is True
        assert await rows(db, api_keys) == 1
        [retry] = {n for n, sql in statements.log if n != holder and sql.startswith("BEGIN")}
        assert statements.index(retry, "BEGIN IMMEDIATE") < statements.index(holder, "COMMIT")
        # It looked for a stored response only once the first had committed one.
        looked = next(
            i for i, (n, sql) in enumerate(statements.log) if n == retry and "SELECT" in sql
        )
        assert looked > statements.index(holder, "COMMIT"), statements.log
    else:
        with pytest.raises(Problem) as refused:
            await idem.run(writes(clock, "b", created), keyed())
        assert refused.value.status == 409
        assert refused.value.slug == "idempotency-key-in-use"
        assert refused.value.headers["Retry-After"] == "1"
        # Another key is not held up.
        assert (await idem.run(writes(clock, "c", created), keyed("other"))).status == 201
        release.set()
        assert (await first).replayed is False
        assert await rows(db, api_keys) == 2


async def run_unless_in_flight(
    idem: Idempotency, operation: store.Operation, key: Keyed
) -> store.Stored | None:
    """The run's result, or None if it was refused as in flight."""
    try:
        return await idem.run(operation, key)
    except Problem as exc:
        if exc.slug != "idempotency-key-in-use":
            raise
        return None


async def test_a_key_held_by_a_hung_server_is_freed_after_the_lock_timeout(
    pg_idem: Idempotency, clock: FakeClock, postgres_url: str
) -> None:
    # The hung request's own timeout, short enough to wait for; the retries keep the
    # long one.
    hung_idem = Idempotency(pg_idem.db, clock, ttl=TTL, lock_timeout=2.0)
    idem = pg_idem
    hung_in_statement, idle = asyncio.Event(), asyncio.Event()
    # A lock of the test's own: while the hung request waits for it inside a statement,
    # its transaction is not idle, so PostgreSQL's idle timeout cannot end it yet.
    blocker = await asyncpg.connect(postgres_url)
    await blocker.execute("SELECT pg_advisory_lock(7)")

    async def hangs(conn: AsyncConnection) -> Response:
        hung_in_statement.set()
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(7)"))
        idle.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    hung = asyncio.create_task(hung_idem.run(hangs, keyed()))
    try:
        await asyncio.wait_for(hung_in_statement.wait(), WAIT)
        await asyncio.wait_for(until_waiting_for_lock(blocker, 7), WAIT)
        # The key is held, and by a transaction that is not idle: certainly in use.
        assert await run_unless_in_flight(idem, writes(clock, "a", created), keyed()) is None
        await blocker.execute("SELECT pg_advisory_unlock(7)")
        await asyncio.wait_for(idle.wait(), WAIT)
        # Now idle in its transaction: PostgreSQL ends it after its lock_timeout (2 s),
        # and only that frees the key. The loop ends by that, not by a deadline of its own.
        for _ in range(600):
            result = await run_unless_in_flight(idem, writes(clock, "b", created), keyed())
            if result is not None:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the hung request's key was never freed")
        assert (result.status, result.replayed) == (201, False)
    finally:
        await blocker.close()
        # Cleanup only: the hung request's connection was ended under it.
        hung.cancel()
        with suppress(asyncio.CancelledError, Exception):
            await hung


async def until_waiting_for_lock(observer: asyncpg.Connection, lock: int) -> None:
    """Until a session of this database waits for advisory lock `lock` (pg_locks)."""
    query = """
        SELECT count(*) FROM pg_locks
        WHERE locktype = 'advisory' AND objid = $1 AND NOT granted
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
    """
    while not await observer.fetchval(query, lock):  # noqa: ASYNC110 (state in PostgreSQL)
        await asyncio.sleep(0.01)


async def test_a_response_stored_by_another_process_meanwhile_wins(
    pg_idem: Idempotency, pg_db: Database, clock: FakeClock, postgres_url: str
) -> None:
    # The race the lock cannot see: another process commits a response for the key
    # after this request looked (its snapshot predates that commit). On SQLite the
    # write lock makes this impossible, so it is PostgreSQL's case.
    idem, db, database_url = pg_idem, pg_db, postgres_url
    theirs = {"status": 201, "headers": '[["location", "/things/9"]]', "body": b"theirs"}

    async def meanwhile(conn: AsyncConnection) -> Response:
        other = await asyncpg.connect(database_url)
        try:
            now = utcnow(clock)
            await other.execute(
                "INSERT INTO idempotency_keys VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                "key:1", "k", "POST", "/things", "f" * 64, theirs["status"], theirs["headers"],
                theirs["body"], now, now + timedelta(seconds=TTL),
            )  # fmt: skip
        finally:
            await other.close()
        return await writes(clock, "mine", created)(conn)

    result = await idem.run(meanwhile, keyed())
    assert (result.status, result.body, result.replayed) == (201, b"theirs", True)
    assert result.headers == (("location", "/things/9"),)
    # This request's own writes went with its transaction.
    assert await rows(db, api_keys) == 0


async def test_purge_deletes_only_expired_keys_in_batches(
    idem: Idempotency, db: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "PURGE_BATCH", 3)
    for i in range(7):
        await idem.run(writes(clock, f"a{i}", created), keyed(f"old{i}"))
    clock.advance(10)
    await idem.run(writes(clock, "young", created), keyed("young"))
    clock.advance(TTL - 5)
    assert await idem.purge() == 7
    assert await rows(db, idempotency_keys) == 1
    assert await idem.purge() == 0
