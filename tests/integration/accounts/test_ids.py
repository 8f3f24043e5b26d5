"""A deleted user's id, and their keys' ids, are never given to another: the audit log
and links' created_by outlive them and must not come to name someone else. SQLite
reuses the highest rowid unless the table is AUTOINCREMENT (migration 0011 makes it
so); PostgreSQL's sequences never hand an id out twice."""

from __future__ import annotations

import sqlalchemy as sa

from kurz.accounts import users
from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate
from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import api_keys
from kurz.db.tables import users as users_table
from tests.support import FakeClock


async def test_the_last_users_and_keys_ids_are_not_reused_after_a_delete(
    db: Database, clock: FakeClock
) -> None:
    now = utcnow(clock)
    async with db.write(READ_COMMITTED) as conn:
        gone = await users.create(conn, email="gone@example.com", role="member", now=now)
        key = await key_queries.create(
            conn=conn, key_in=ApiKeyCreate(name="k"), now=now, user_id=gone
        )
    async with db.write(READ_COMMITTED) as conn:
        await conn.execute(sa.delete(api_keys).where(api_keys.c.id == key.id))
        await conn.execute(sa.delete(users_table).where(users_table.c.id == gone))
    async with db.write(READ_COMMITTED) as conn:
        new = await users.create(conn, email="new@example.com", role="member", now=now)
        new_key = await key_queries.create(
            conn=conn, key_in=ApiKeyCreate(name="k"), now=now, user_id=new
        )
    assert new > gone
    assert new_key.id > key.id
