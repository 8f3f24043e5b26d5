"""kurz.idempotency.steps on its own, on SQLite and PostgreSQL: a keyed operation in
steps, each step's writes and its record in one transaction; a retry resumes it, and
of two runs only the one the record names writes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.clock import utcnow
from kurz.db import Database
from kurz.db.tables import idempotency_keys
from kurz.errors import Problem
from kurz.idempotency import Idempotency, Keyed, Recorded, Steps
from kurz.idempotency.steps import Entries, Run
from tests.support import FakeClock

LEASE = 10.0


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database.from_url(database_url)
    yield database
    await database.dispose()


@pytest.fixture
def steps(db: Database, clock: FakeClock) -> Steps:
    return Steps(Idempotency(db, clock, ttl=3600.0, lock_timeout=LEASE))


def keyed(fingerprint: str = "f" * 64) -> Keyed:
    return Keyed(principal="key:1", operation="make-things", key="k", fingerprint=fingerprint)


class Writes:
    """Steps that each write one entry: what ran, in order."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def of(self, *entries: str) -> Callable[[AsyncConnection], Awaitable[Entries]]:
        async def operation(conn: AsyncConnection) -> Entries:
            await conn.execute(sa.text("SELECT 1"))
            self.ran.extend(entries)
            return [f'"{entry}"' for entry in entries]

        return operation


def whole(entries: Entries) -> str:
    return "[" + ",".join(entries) + "]"


async def begun(steps: Steps, key: Keyed | None) -> Run:
    run = await steps.begin(key)
    assert isinstance(run, Run)
    return run


async def test_a_run_resumes_where_a_dead_one_stopped_and_the_dead_one_writes_no_more(
    steps: Steps, clock: FakeClock
) -> None:
    writes = Writes()
    first = await begun(steps, keyed())
    assert await steps.step(first, writes.of("a", "b")) == ['"a"', '"b"']
    with pytest.raises(Problem) as busy:
        await steps.begin(keyed())
    assert busy.value.slug == "idempotency-key-in-use"
    assert busy.value.headers["Retry-After"] == str(int(LEASE))

    clock.advance(LEASE + 1)  # the first run's process died: its lease ran out
    second = await begun(steps, keyed())
    assert second.done == ['"a"', '"b"']
    with pytest.raises(Problem) as taken:
        await steps.step(first, writes.of("never"))
    assert taken.value.slug == "idempotency-key-in-use"
    await steps.step(second, writes.of("c"), answer=whole)
    assert writes.ran == ["a", "b", "c"]

    replay = await steps.begin(keyed())
    assert replay == Recorded('["a","b","c"]')
    with pytest.raises(Problem) as reused:
        await steps.begin(keyed("e" * 64))
    assert reused.value.slug == "idempotency-key-reused"


async def test_a_released_run_is_taken_over_at_once_and_unkeyed_steps_record_nothing(
    steps: Steps, db: Database
) -> None:
    writes = Writes()
    first = await begun(steps, keyed())
    await steps.step(first, writes.of("a"))
    await steps.release(first)
    second = await begun(steps, keyed())
    assert second.done == ['"a"']

    unkeyed = await begun(steps, None)
    await steps.step(unkeyed, writes.of("x"), answer=whole)
    assert unkeyed.done == ['"x"']
    async with db.read() as conn:
        kept = await conn.scalar(sa.select(sa.func.count()).select_from(idempotency_keys))
    assert kept == 1


async def test_a_failed_step_writes_neither_its_work_nor_its_record(
    steps: Steps, db: Database, clock: FakeClock
) -> None:
    run = await begun(steps, keyed())

    async def failing(conn: AsyncConnection) -> Entries:
        await conn.execute(
            sa.insert(idempotency_keys).values(
                principal="key:2", operation="other", key="x", fingerprint="f",
                status=200, result="{}", created_at=utcnow(clock), expires_at=utcnow(clock),
            )
        )  # fmt: skip
        raise RuntimeError("the step fails after writing")

    with pytest.raises(RuntimeError):
        await steps.step(run, failing)
    async with db.read() as conn:
        principals = (await conn.scalars(sa.select(idempotency_keys.c.principal))).all()
    assert principals == ["key:1"]
    clock.advance(LEASE + 1)
    assert (await begun(steps, keyed())).done == []
