"""kurz.idempotency's store on its own, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.clock import utcnow
from kurz.db import Database
from kurz.db.tables import idempotency_keys, users
from kurz.errors import Problem
from kurz.idempotency import Done, Idempotency, Keyed, ReplayedProblem, store
from tests.support import FakeClock

TTL = 3600.0
# PostgreSQL ends a keyed transaction idle for this long. Far longer than a loaded
# host pauses between two statements: only the test about it waits for it.
LOCK_TIMEOUT = 30.0
# Only so that a broken lock fails the test instead of hanging it.
WAIT = 30.0


class Thing(BaseModel):
    """A result, as a use case returns one."""

    name: str
    number: int


def keyed(key: str = "k", fingerprint: str = "f" * 64) -> Keyed:
    return Keyed(principal="key:1", operation="make-thing", key=key, fingerprint=fingerprint)


async def run(
    idem: Idempotency, operation: store.Operation[Thing], key: Keyed | None
) -> Done[Thing]:
    return await idem.run(operation, key, result=Thing)


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
    clock: FakeClock, name: str, then: Callable[[], Thing]
) -> Callable[[AsyncConnection], Awaitable[Thing]]:
    """An operation that writes a row, then answers (or raises) what `then` gives."""

    async def operation(conn: AsyncConnection) -> Thing:
        await conn.execute(
            sa.insert(users).values(email=name, role="member", created_at=utcnow(clock))
        )
        return then()

    return operation


async def rows(db: Database, table: sa.Table) -> int:
    async with db.read() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


def created() -> Thing:
    return Thing(name="ü", number=1)


async def test_a_result_is_recorded_and_replayed(
    idem: Idempotency, db: Database, clock: FakeClock
) -> None:
    first = await run(idem, writes(clock, "a", created), keyed())
    assert first == Done(Thing(name="ü", number=1), replayed=False)
    again = await run(idem, writes(clock, "b", lambda: Thing(name="b", number=2)), keyed())
    assert again == Done(first.value, replayed=True)
    assert await rows(db, users) == 1


async def test_the_record_holds_the_result_and_nothing_of_http(
    idem: Idempotency, db: Database, clock: FakeClock
) -> None:
    await run(idem, writes(clock, "a", created), keyed())
    async with db.read() as conn:
        row = (await conn.execute(sa.select(idempotency_keys))).one()._asdict()
    assert set(row) == {
        "principal", "operation", "key", "fingerprint", "status", "result", "created_at",
        "expires_at",
    }  # fmt: skip
    assert (row["principal"], row["operation"], row["key"]) == ("key:1", "make-thing", "k")
    assert (row["status"], Thing.model_validate_json(row["result"])) == (200, created())
    assert row["expires_at"] - row["created_at"] == timedelta(seconds=TTL)


def problem(status: int, **headers: str) -> Callable[[], Thing]:
    def raise_it() -> Thing:
        errors = [{"field": "name", "in": "body", "message": "too ü"}]
        extensions = {"hint": ["try", 2]}
        raise Problem(
            status, "x", "X", "x ü", errors=errors, headers=headers, extensions=extensions
        )

    return raise_it


@pytest.mark.parametrize("status", [400, 404, 409, 412, 422])
async def test_a_client_error_is_stored_and_its_writes_undone(
    idem: Idempotency, db: Database, clock: FakeClock, status: int
) -> None:
    etag = {"ETag": '"7"'} if status == 412 else {}
    with pytest.raises(Problem) as refused:
        await run(idem, writes(clock, "a", problem(status, **etag)), keyed())
    first = refused.value
    assert not isinstance(first, ReplayedProblem)
    assert await rows(db, users) == 0
    assert await rows(db, idempotency_keys) == 1
    with pytest.raises(ReplayedProblem) as replayed:
        await run(idem, writes(clock, "b", created), keyed())
    again = replayed.value
    assert (again.status, again.slug, again.title, again.detail) == (status, "x", "X", "x ü")
    assert (again.errors, again.extensions) == (first.errors, first.extensions)
    # A 412's ETag names the version that won; nothing else of HTTP is kept.
    assert again.headers == etag
    assert await rows(db, users) == 0


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_a_429_or_5xx_is_not_stored(
    idem: Idempotency, db: Database, clock: FakeClock, status: int
) -> None:
    with pytest.raises(Problem):
        await run(idem, writes(clock, "a", problem(status)), keyed())
    assert (await rows(db, users), await rows(db, idempotency_keys)) == (0, 0)
    retried = await run(idem, writes(clock, "b", created), keyed())
    assert retried.replayed is False


async def test_a_crashing_operation_stores_nothing(
    idem: Idempotency, db: Database, clock: FakeClock
) -> None:
    def crash() -> Thing:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        await run(idem, writes(clock, "a", crash), keyed())
    assert (await rows(db, users), await rows(db, idempotency_keys)) == (0, 0)
    assert (await run(idem, writes(clock, "b", created), keyed())).replayed is False


async def test_without_a_key_the_operation_just_runs(
    idem: Idempotency, db: Database, clock: FakeClock
) -> None:
    for name in "ab":
        assert (await run(idem, writes(clock, name, created), None)).replayed is False
    assert (await rows(db, users), await rows(db, idempotency_keys)) == (2, 0)
    with pytest.raises(Problem):
        await run(idem, writes(clock, "c", problem(409)), None)
    assert await rows(db, users) == 2


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

    async def slow(conn: AsyncConnection) -> Thing:
        started.set()
        await release.wait()
        return await writes(clock, "a", created)(conn)

    first = asyncio.create_task(run(idem, slow, keyed()))
    await started.wait()
    if statements is not None:
        [(holder, _)] = [entry for entry in statements.log if entry[1].startswith("BEGIN")]
        second = asyncio.create_task(run(idem, writes(clock, "b", created), keyed()))

        def retry_began(log: list[tuple[int, str]]) -> bool:
            return any(n != holder and sql.startswith("BEGIN") for n, sql in log)

        # The retry has begun its transaction in SQLite while the first request holds
        # the write lock: the database's write lock queues it behind the first.
        await asyncio.wait_for(statements.until(retry_began), WAIT)
        release.set()
        assert (await first).replayed is False
        assert (await second).replayed is True
        assert await rows(db, users) == 1
        [retry] = {n for n, sql in statements.log if n != holder and sql.startswith("BEGIN")}
        assert statements.index(retry, "BEGIN IMMEDIATE") < statements.index(holder, "COMMIT")
        # It looked for a stored response only once the first had committed one.
        looked = next(
            i for i, (n, sql) in enumerate(statements.log) if n == retry and "SELECT" in sql
        )
        assert looked > statements.index(holder, "COMMIT"), statements.log
    else:
        with pytest.raises(Problem) as refused:
            await run(idem, writes(clock, "b", created), keyed())
        assert refused.value.status == 409
        assert refused.value.slug == "idempotency-key-in-use"
        assert refused.value.headers["Retry-After"] == "1"
        # Another key is not held up.
        assert (await run(idem, writes(clock, "c", created), keyed("other"))).replayed is False
        release.set()
        assert (await first).replayed is False
        assert await rows(db, users) == 2


async def run_unless_in_flight(
    idem: Idempotency, operation: store.Operation[Thing], key: Keyed
) -> Done[Thing] | None:
    """The run's result, or None if it was refused as in flight."""
    try:
        return await run(idem, operation, key)
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

    async def hangs(conn: AsyncConnection) -> Thing:
        hung_in_statement.set()
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(7)"))
        idle.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    hung = asyncio.create_task(run(hung_idem, hangs, keyed()))
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
        assert result.replayed is False
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
    theirs = Thing(name="theirs", number=9)

    async def meanwhile(conn: AsyncConnection) -> Thing:
        other = await asyncpg.connect(database_url)
        try:
            now = utcnow(clock)
            await other.execute(
                "INSERT INTO idempotency_keys (principal, operation, key, fingerprint, status, "
                "result, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                "key:1", "make-thing", "k", "f" * 64, 200, theirs.model_dump_json(), now,
                now + timedelta(seconds=TTL),
            )  # fmt: skip
        finally:
            await other.close()
        return await writes(clock, "mine", created)(conn)

    result = await run(idem, meanwhile, keyed())
    assert result == Done(theirs, replayed=True)
    # This request's own writes went with its transaction.
    assert await rows(db, users) == 0


async def test_purge_deletes_only_expired_keys_in_batches(
    idem: Idempotency, db: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "PURGE_BATCH", 3)
    for i in range(7):
        await run(idem, writes(clock, f"a{i}", created), keyed(f"old{i}"))
    clock.advance(10)
    await run(idem, writes(clock, "young", created), keyed("young"))
    clock.advance(TTL - 5)
    assert await idem.purge() == 7
    assert await rows(db, idempotency_keys) == 1
    assert await idem.purge() == 0
