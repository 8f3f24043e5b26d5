"""Users and keys made straight in the database, for tests of what they may do."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from kurz.accounts import users
from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate, Scope, scopes_for
from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import audit_events
from tests.support import FakeClock


@dataclass(frozen=True)
class Made:
    """A user and one key of theirs."""

    user_id: int
    key_id: int
    secret: str


async def new_user(db: Database, clock: FakeClock, email: str, role: str = "member") -> int:
    async with db.write(READ_COMMITTED) as conn:
        return await users.create(conn, email=email, role=role, now=utcnow(clock))


async def new_key(
    db: Database,
    clock: FakeClock,
    user_id: int,
    scopes: Collection[Scope] | None = None,
    *,
    name: str = "key",
    expires_at: datetime | None = None,
) -> Made:
    """A key of `user_id` (a member's scopes unless told), stored as given: unchecked
    against the user's role, as a key of a since-demoted admin is."""
    key_in = ApiKeyCreate(
        name=name,
        scopes=list(scopes_for() if scopes is None else scopes),
        expires_at=expires_at,
    )
    async with db.write(READ_COMMITTED) as conn:
        created = await key_queries.create(
            conn=conn, key_in=key_in, now=utcnow(clock), user_id=user_id
        )
    return Made(user_id, created.id, created.secret)


async def member(db: Database, clock: FakeClock, email: str, *scopes: Scope) -> Made:
    """A new member with one key (a member's scopes, or `scopes`)."""
    return await new_key(db, clock, await new_user(db, clock, email), scopes or None)


async def admin(db: Database, clock: FakeClock, email: str) -> Made:
    """A new admin with a key of every scope."""
    user_id = await new_user(db, clock, email, "admin")
    return await new_key(db, clock, user_id, scopes_for(admin=True, proxy=True))


async def audit_log(db: Database) -> list[dict[str, Any]]:
    """Every audit event, oldest first, its detail parsed."""
    async with db.read() as conn:
        rows = await conn.execute(sa.select(audit_events).order_by(audit_events.c.id))
        return [{**row._asdict(), "detail": orjson.loads(row.detail)} for row in rows]
