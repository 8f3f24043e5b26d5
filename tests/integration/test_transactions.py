"""Transactions run at the level their code names, and SQLite writers lock from BEGIN."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from kurz.db import READ_COMMITTED, REPEATABLE_READ, SERIALIZABLE, Database, Isolation

_SHOWN = {
    READ_COMMITTED: "read committed",
    REPEATABLE_READ: "repeatable read",
    SERIALIZABLE: "serializable",
}


async def _level(db: Database, *, write: bool, isolation: Isolation) -> str:
    transaction = db.write(isolation) if write else db.read(isolation)
    async with transaction as conn:
        shown = (await conn.exec_driver_sql("SHOW transaction_isolation")).scalar_one()
    assert isinstance(shown, str)
    return shown


@pytest.mark.parametrize("write", [True, False], ids=["write", "read"])
async def test_postgresql_transactions_run_at_the_level_named_whatever_the_default(
    postgres_url: str, write: bool
) -> None:
    # A server configured to another default must not change what kurz's code chose.
    admin = await asyncpg.connect(postgres_url.replace("postgresql://", "postgres://"))
    try:
        name = make_url(postgres_url).database
        await admin.execute(
            f"ALTER DATABASE {name} SET default_transaction_isolation = 'serializable'"
        )
    finally:
        await admin.close()
    db = Database.from_url(postgres_url)
    try:
        shown = {level: await _level(db, write=write, isolation=level) for level in _SHOWN}
        assert shown == _SHOWN
        async with db.read() as conn:
            default = (await conn.exec_driver_sql("SHOW transaction_isolation")).scalar_one()
        assert default == "read committed"
    finally:
        await db.dispose()


def _try_to_write(path: str) -> str | None:
    """Another process's writer, not willing to wait: None if it got the lock, else why not."""
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return None
    except sqlite3.OperationalError as exc:
        return str(exc)
    finally:
        other.close()


async def test_sqlite_writers_hold_the_write_lock_from_begin_and_readers_do_not(
    sqlite_url: str,
) -> None:
    path = make_url(sqlite_url).database
    assert path is not None
    db = Database.from_url(sqlite_url)
    try:
        async with db.write(READ_COMMITTED):
            # Nothing executed yet: BEGIN IMMEDIATE alone took the lock, so a
            # read-then-write here can never fail to upgrade (SQLITE_BUSY).
            assert _try_to_write(path) == "database is locked"
        async with db.read(SERIALIZABLE) as conn:
            await conn.exec_driver_sql("SELECT count(*) FROM links")
            assert _try_to_write(path) is None
        assert _try_to_write(path) is None
    finally:
        await db.dispose()
