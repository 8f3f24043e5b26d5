"""Alembic environment: kurz hands in the connection (see kurz.db.migrate)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from kurz.db import READ_COMMITTED
from kurz.db.migrate import declared
from kurz.db.tables import metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite can only ALTER by copying the table.
        compare_type=True,
        include_name=declared,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone() -> None:
    # Reached only from the plain `alembic` command (e.g. autogenerate while developing).
    from kurz.config import Settings
    from kurz.db.engine import Database

    db = Database.from_url(Settings().database_url)
    try:
        async with db.write(READ_COMMITTED) as conn:
            await conn.run_sync(run)
    finally:
        await db.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    asyncio.run(_run_standalone())
