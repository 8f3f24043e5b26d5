"""SQL for endpoints and their deliveries, on a connection the caller holds.

Every read names the owner: another user's endpoint, or its deliveries, is not found.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.db.keyset import decode_cursor, encode_cursor
from kurz.db.tables import jobs, webhook_deliveries, webhook_endpoints
from kurz.jobs import JobState
from kurz.webhooks.models import (
    EVENTS,
    DeliveryDetail,
    DeliveryRead,
    DeliveryStatus,
    Event,
    WebhookRead,
)

_E = webhook_endpoints.c
_D = webhook_deliveries.c


def stored_events(events: list[Event]) -> str:
    """As the events column holds them: each between spaces (kurz.webhooks.outbox.wants)."""
    return f" {' '.join(events)} "


def read(row: Any, now: datetime) -> WebhookRead:
    named = row.events.split()
    until = row.previous_until
    return WebhookRead(
        id=row.id,
        url=row.url,
        events=[event for event in EVENTS if event in named],
        description=row.description,
        enabled=row.enabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
        previous_secret_expires_at=until if until is not None and until > now else None,
    )


def owned(user_id: int, webhook_id: int) -> list[sa.ColumnElement[bool]]:
    return [_E.id == webhook_id, _E.user_id == user_id]


async def get(conn: AsyncConnection, *, user_id: int, webhook_id: int) -> Any:
    """The endpoint's row, or None (none, or another user's)."""
    query = sa.select(*webhook_endpoints.c).where(*owned(user_id, webhook_id))
    return (await conn.execute(query)).first()


async def page(
    conn: AsyncConnection, *, user_id: int, limit: int, cursor: str | None
) -> tuple[list[Any], str | None]:
    """A page of the user's endpoints, newest first, and the next page's cursor."""
    query = (
        sa.select(*webhook_endpoints.c)
        .where(_E.user_id == user_id)
        .order_by(_E.id.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        query = query.where(_E.id < decode_cursor(cursor))
    rows = list((await conn.execute(query)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].id) if more else None


# A delivery's status: delivered once answered 2xx, dead when its job is; pending
# while its job waits or runs.
_STATUS = sa.case(
    (_D.delivered_at.is_not(None), "delivered"),
    (jobs.c.state == JobState.DEAD.value, "dead"),
    else_="pending",
).label("status")
_NEXT = sa.case((jobs.c.state == JobState.QUEUED.value, jobs.c.run_at), else_=None).label(
    "next_attempt_at"
)
_DELIVERY_COLUMNS = (*webhook_deliveries.c, _STATUS, _NEXT)
_WITH_JOB = webhook_deliveries.outerjoin(jobs, jobs.c.id == _D.job_id)


def delivery(row: Any) -> DeliveryRead:
    return DeliveryRead(
        id=row.id,
        webhook=row.endpoint_id,
        message_id=row.message_id,
        event=row.event,
        status=row.status,
        attempts=row.attempts,
        last_status=row.last_status,
        last_error=row.last_error,
        last_attempt_at=row.last_attempt_at,
        next_attempt_at=row.next_attempt_at if row.delivered_at is None else None,
        delivered_at=row.delivered_at,
        created_at=row.created_at,
    )


def detail(row: Any) -> DeliveryDetail:
    return DeliveryDetail(**delivery(row).model_dump(), payload=row.payload)


async def deliveries(
    conn: AsyncConnection,
    *,
    endpoint_id: int,
    limit: int,
    cursor: str | None,
    status: DeliveryStatus | None = None,
) -> tuple[list[DeliveryRead], str | None]:
    """A page of an endpoint's deliveries, newest first (the caller checked the owner)."""
    query = (
        sa.select(*_DELIVERY_COLUMNS)
        .select_from(_WITH_JOB)
        .where(_D.endpoint_id == endpoint_id)
        .order_by(_D.id.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        query = query.where(_D.id < decode_cursor(cursor))
    if status is not None:
        query = query.where(_STATUS.__eq__(status))
    rows = (await conn.execute(query)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return [delivery(row) for row in rows], encode_cursor(rows[-1].id) if more else None


async def get_delivery(conn: AsyncConnection, *, endpoint_id: int, delivery_id: int) -> Any:
    query = (
        sa.select(*_DELIVERY_COLUMNS)
        .select_from(_WITH_JOB)
        .where(_D.id == delivery_id, _D.endpoint_id == endpoint_id)
    )
    return (await conn.execute(query)).first()
