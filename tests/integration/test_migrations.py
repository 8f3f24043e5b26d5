"""The migrations build exactly the schema kurz.db.tables declares, on both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from kurz.db import Database, SchemaNotReady, ensure_schema, upgrade
from kurz.db.migrate import SchemaState, schema_state
from kurz.db.tables import metadata


def _diff(sync_conn: Connection) -> list[Any]:
    context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_migrated_schema_matches_the_tables(database_url: str) -> None:
    db = Database.from_url(database_url)
    try:
        assert await schema_state(db) is SchemaState.CURRENT
        async with db.read() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await db.dispose()


async def test_empty_postgres_is_refused_until_migrated(empty_postgres_url: str) -> None:
    db = Database.from_url(empty_postgres_url)
    try:
        with pytest.raises(SchemaNotReady, match="kurz migrate"):
            await ensure_schema(db)
        await upgrade(db)
        await ensure_schema(db)
        assert await schema_state(db) is SchemaState.CURRENT
    finally:
        await db.dispose()


async def test_outdated_postgres_is_refused(empty_postgres_url: str) -> None:
    db = Database.from_url(empty_postgres_url)
    try:
        await upgrade(db)
        async with db.write() as conn:
            await conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffff'")
        with pytest.raises(SchemaNotReady, match="newer kurz"):
            await ensure_schema(db)
    finally:
        await db.dispose()


async def test_a_new_sqlite_file_is_created_and_migrated(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "kurz.db"
    db = Database.from_url(f"sqlite:///{path}")
    try:
        await ensure_schema(db)
        assert path.exists()
        assert await schema_state(db) is SchemaState.CURRENT
        async with db.read() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
        assert mode == "wal"
    finally:
        await db.dispose()


async def test_downgrade_and_upgrade_round_trip(database_url: str) -> None:
    db = Database.from_url(database_url)
    try:
        await upgrade(db, "base")
        assert await schema_state(db) is SchemaState.EMPTY
        await upgrade(db)
        async with db.read() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await db.dispose()
