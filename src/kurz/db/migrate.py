"""Alembic, driven from code: apply migrations and tell whether a schema is current.

Alembic is imported only to migrate or to explain a schema that is not current: a
server starting on a current schema reads the `alembic_version` table itself and
compares it with HEAD, which spares every start Alembic's import (about 0.05 s of CPU,
docs/benchmarks.md, "Start-up").
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from kurz.db.engine import Database

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration's revision: the schema a current database is at. A test holds it
# equal to Alembic's head (tests/unit/test_migration_head.py); a new migration changes it.
HEAD = "0017"

# What the migrations make outside kurz.db.tables, because it differs by backend: the
# links' search index (ADR 0018), an FTS5 table with its shadow tables on SQLite and a
# GIN index on PostgreSQL.
_UNDECLARED = ("links_search", "ix_links_search")


def declared(name: str | None, type_: str, parent_names: object) -> bool:
    """Whether comparing the schema with kurz.db.tables should look at an object
    (Alembic's include_name): not at what the tables cannot declare."""
    return name is None or not name.startswith(_UNDECLARED)


class SchemaState(enum.Enum):
    CURRENT = "current"
    EMPTY = "empty"
    OUTDATED = "outdated"
    # The database was migrated by a newer kurz than this one.
    UNKNOWN = "unknown"


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revisions() -> set[str]:
    """The head revisions of the migrations, as Alembic reads them from their files."""
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def known_revisions() -> set[str]:
    """Every revision this kurz has a migration for."""
    from alembic.script import ScriptDirectory

    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def pending_revisions(applied: set[str]) -> list[str]:
    """The revisions an upgrade to head applies after `applied`, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    lower = tuple(applied) or None
    pending = script.iterate_revisions("heads", lower or "base")
    return sorted(rev.revision for rev in pending if rev.revision not in applied)


async def upgrade(db: Database, revision: str = "head") -> None:
    """Move the schema to `revision` in one transaction ("base" empties it)."""
    from alembic import command

    def run(sync_conn: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = sync_conn
        if revision == "base":
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)

    async with db.migration() as conn:
        await conn.run_sync(run)


async def downgrade(db: Database, revision: str) -> None:
    """Move the schema back to `revision` in one transaction."""
    from alembic import command

    def run(sync_conn: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = sync_conn
        command.downgrade(config, revision)

    async with db.migration() as conn:
        await conn.run_sync(run)


async def applied_revisions(db: Database) -> set[str]:
    """The revisions the database's schema is at (none when it is empty)."""

    def current(sync_conn: Connection) -> set[str]:
        # What Alembic's MigrationContext.get_current_heads reads, without importing it.
        if not inspect(sync_conn).has_table("alembic_version"):
            return set()
        rows = sync_conn.execute(text("SELECT version_num FROM alembic_version"))
        return {row[0] for row in rows}

    async with db.read() as conn:
        return await conn.run_sync(current)


async def schema_state(db: Database) -> SchemaState:
    applied = await applied_revisions(db)
    if not applied:
        return SchemaState.EMPTY
    if applied == {HEAD}:
        return SchemaState.CURRENT
    return SchemaState.OUTDATED if applied <= known_revisions() else SchemaState.UNKNOWN


class SchemaNotReady(RuntimeError):
    """The database's schema is not the one this kurz needs; the message says what to run."""


async def ensure_schema(db: Database) -> None:
    """Make the schema usable: migrate an embedded SQLite file, refuse anything else stale.

    SQLite belongs to this one process, so migrating it on start is safe. A shared
    PostgreSQL is migrated on purpose, once, by `kurz migrate`, never by N servers racing.
    """
    state = await schema_state(db)
    if state is SchemaState.CURRENT:
        return
    if state is SchemaState.UNKNOWN:
        raise SchemaNotReady(
            "the database was migrated by a newer kurz than this one; upgrade kurz"
        )
    if db.is_sqlite:
        await upgrade(db)
        return
    raise SchemaNotReady(
        f"the database schema is {state.value}; run `kurz migrate` against it first"
    )
