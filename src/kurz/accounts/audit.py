"""The audit log's writing side: one row per account event (GET /api/v1/audit reads
them). Written in the transaction of the change it records, so that neither is kept
without the other."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.db.tables import audit_events

# What the log records (the `event` column). Kept to this list, so that a reader can
# filter by name and a typo fails a test instead of writing a name nobody looks for.
EVENTS = frozenset(
    {
        "setup",  # the first admin, through the setup link or KURZ_INITIAL_ADMIN_EMAIL
        "signin",
        "signin-failed",
        "signout",
        "signout-everywhere",
        "password-changed",
        "password-reset",  # a reset link was used
        "reset-link-made",
        "user-invited",
        "user-joined",  # an invitation was used
        "user-created",  # by `kurz users create`
        "role-changed",
        "user-renamed",  # an admin changed a user's display name
        "user-disabled",
        "user-enabled",
        "user-deleted",
        "key-created",
        "key-revoked",
    }
)


async def record(
    conn: AsyncConnection,
    *,
    event: str,
    at: datetime,
    actor_user_id: int | None = None,
    actor_key_id: int | None = None,
    user_id: int | None = None,
    ip: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Log `event`: done by `actor_user_id` (with `actor_key_id`, if a key was used) to
    `user_id`, from `ip`; `detail` is what else it says (JSON)."""
    if event not in EVENTS:
        raise ValueError(f"unknown audit event {event!r}")
    await conn.execute(
        insert(audit_events).values(
            at=at,
            event=event,
            actor_user_id=actor_user_id,
            actor_key_id=actor_key_id,
            user_id=user_id,
            ip=None if ip is None else ip[:64],
            detail=orjson.dumps(detail or {}).decode(),
        )
    )
