"""Alembic, driven from code: apply migrations and tell whether a schema is current."""

from __future__ import annotations

import enum
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from kurz.db.engine import Database

MIGRATIONS = Path(__file__).parent / "migrations"

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
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def known_revisions() -> set[str]:
    """Every revision this kurz has a migration for."""
    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def pending_revisions(applied: set[str]) -> list[str]:
    """The revisions an upgrade to head applies after `applied`, oldest first."""
    script = ScriptDirectory.from_config(alembic_config())
    lower = tuple(applied) or None
    pending = script.iterate_revisions("heads", lower or "base")
    return sorted(rev.revision for rev in pending if rev.revision not in applied)


async def upgrade(db: Database, revision: str = "head") -> None:
    """Move the schema to `revision` in one transaction ("base" empties it)."""

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

    def run(sync_conn: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = sync_conn
        command.downgrade(config, revision)

    async with db.migration() as conn:
        await conn.run_sync(run)


async def applied_revisions(db: Database) -> set[str]:
    """The revisions the database's schema is at (none when it is empty)."""

    def current(sync_conn: Connection) -> set[str]:
        return set(MigrationContext.configure(sync_conn).get_current_heads())

    async with db.read() as conn:
        return await conn.run_sync(current)


async def schema_state(db: Database) -> SchemaState:
    applied = await applied_revisions(db)
    heads = head_revisions()
    if not applied:
        return SchemaState.EMPTY
    if applied == heads:
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
