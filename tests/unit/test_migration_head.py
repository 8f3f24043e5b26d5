"""kurz.db.migrate.HEAD, which a start compares the database with instead of importing
Alembic, is the head Alembic finds in the migrations."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from kurz.db import Database, upgrade
from kurz.db.migrate import HEAD, SchemaState, head_revisions


def test_head_is_alembics_single_head() -> None:
    assert head_revisions() == {HEAD}


def _migrated(url: str) -> None:
    async def run() -> None:
        db = Database.from_url(url)
        try:
            await upgrade(db)
        finally:
            await db.dispose()

    asyncio.run(run())


def test_a_current_schema_is_told_without_importing_alembic(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/k.db"
    _migrated(url)
    # In a new interpreter: this one has imported Alembic to migrate.
    program = f"""
import asyncio, sys
from kurz.db import Database, ensure_schema
from kurz.db.migrate import schema_state

async def main():
    db = Database.from_url({url!r})
    try:
        await ensure_schema(db)
        print(await schema_state(db), "alembic" in sys.modules)
    finally:
        await db.dispose()

asyncio.run(main())
"""
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == [str(SchemaState.CURRENT), "False"]
