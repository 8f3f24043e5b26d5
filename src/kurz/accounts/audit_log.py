"""The audit log's reading side (GET /api/v1/audit) and its retention.

kurz.accounts.audit writes the events; this reads them a page at a time, newest first,
and deletes those older than KURZ_AUDIT_RETENTION.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from pydantic import BaseModel, Field

from kurz.accounts.audit import EVENTS
from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, Database
from kurz.db.keyset import decode_cursor, encode_cursor
from kurz.db.tables import audit_events, users
from kurz.errors import invalid
from kurz.types import Clock

# Rows per purge transaction: writers of the log (sign-ins) never wait long for it.
PURGE_BATCH = 1_000


class AuditUser(BaseModel):
    id: int
    email: str | None = Field(description="The user's email; null once the user is deleted.")


class AuditActor(BaseModel):
    user: AuditUser | None = Field(
        description="Who did it; null when no known user did (a failed sign-in with an "
        "unknown email, the first admin made from KURZ_INITIAL_ADMIN_EMAIL)."
    )
    key: int | None = Field(description="The API key they used; null when signed in.")


class AuditEntry(BaseModel):
    id: int
    at: datetime
    event: str = Field(examples=["key-created"])
    actor: AuditActor
    user: AuditUser | None = Field(description="Whom the event concerns, if anyone.")
    ip: str | None = Field(description="The address the request came from.")
    detail: dict[str, Any] = Field(description="What else the event says (per event).")


class AuditPagination(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


_actor = users.alias("actor")
_subject = users.alias("subject")
_e = audit_events.c
_QUERY = sa.select(
    _e.id,
    _e.at,
    _e.event,
    _e.actor_user_id,
    _e.actor_key_id,
    _e.user_id,
    _e.ip,
    _e.detail,
    _actor.c.email.label("actor_email"),
    _subject.c.email.label("user_email"),
).select_from(
    audit_events.outerjoin(_actor, _actor.c.id == _e.actor_user_id).outerjoin(
        _subject, _subject.c.id == _e.user_id
    )
)


def _user(user_id: int | None, email: str | None) -> AuditUser | None:
    return None if user_id is None else AuditUser(id=user_id, email=email)


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        event=row.event,
        actor=AuditActor(user=_user(row.actor_user_id, row.actor_email), key=row.actor_key_id),
        user=_user(row.user_id, row.user_email),
        ip=row.ip,
        detail=orjson.loads(row.detail),
    )


def _check_events(events: Collection[str]) -> None:
    unknown = sorted(set(events) - EVENTS)
    if unknown:
        raise invalid(
            "event",
            f"{', '.join(unknown)} is not an audit event; one of {', '.join(sorted(EVENTS))}",
            location="query",
        )


class AuditLog:
    """Reads the log for admins, and forgets what is older than `retention` seconds."""

    def __init__(self, *, db: Database, clock: Clock, retention: float) -> None:
        self.db = db
        self.clock = clock
        self.retention = retention

    async def page(
        self,
        *,
        limit: int,
        cursor: str | None = None,
        events: Collection[str] = (),
        user: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> AuditPagination:
        """One page, newest first, by keyset on the id. `user` matches the events done
        by that user and those done to them; `since` is inclusive, `until` exclusive."""
        _check_events(events)
        if since is not None and until is not None and until <= since:
            raise invalid("until", "must be after since", location="query")
        query = _QUERY
        if cursor is not None:
            query = query.where(_e.id < decode_cursor(cursor))
        if events:
            query = query.where(_e.event.in_(sorted(set(events))))
        if user is not None:
            query = query.where(sa.or_(_e.user_id == user, _e.actor_user_id == user))
        if since is not None:
            query = query.where(_e.at >= since)
        if until is not None:
            query = query.where(_e.at < until)
        async with self.db.read() as conn:
            rows = (await conn.execute(query.order_by(_e.id.desc()).limit(limit + 1))).all()
        page, more = rows[:limit], len(rows) > limit
        return AuditPagination(
            items=[_entry(row) for row in page],
            next_cursor=encode_cursor(page[-1].id) if more else None,
        )

    async def purge(self, *, batch: int = PURGE_BATCH) -> int:
        """Delete the events older than the retention, `batch` per transaction; how many.
        Safe to run twice at once: each deletes what the other has not."""
        cutoff = utcnow(self.clock) - timedelta(seconds=self.retention)
        total = 0
        while True:
            due = sa.select(_e.id).where(_e.at < cutoff).limit(batch)
            async with self.db.write(READ_COMMITTED) as conn:
                result = await conn.execute(sa.delete(audit_events).where(_e.id.in_(due)))
            total += result.rowcount
            if result.rowcount < batch:
                return total
