"""Events into deliveries, in the transaction of the change they announce.

Each event becomes one delivery per endpoint that wants it: a row of
webhook_deliveries and the job that sends it, both written on the caller's
connection. A change that rolls back leaves neither; one that commits leaves both,
and the job runs until the delivery is answered or dead (ADR 0021).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.clock import utcnow
from kurz.db.tables import links, webhook_deliveries, webhook_endpoints
from kurz.jobs import JobStore
from kurz.links import codes
from kurz.links import queries as link_queries
from kurz.types import Clock
from kurz.webhooks.models import EVENTS, Event, ImportFinished

DELIVER = "webhook-deliver"
QUEUE = "webhooks"
# The first attempt and eight retries over about a day (kurz.webhooks.scheduled).
ATTEMPTS = 9


_LINK_EVENTS: dict[str, Event] = {
    event: event for event in EVENTS if event.startswith("link.") and event != "link.clicked"
}


def message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def body(event: Event, data: Mapping[str, Any], at: datetime) -> str:
    """The JSON a delivery sends, as the Standard Webhooks specification shapes it."""
    return orjson.dumps(
        {"type": event, "timestamp": at.isoformat().replace("+00:00", "Z"), "data": data}
    ).decode()


def wants(event: str) -> sa.ColumnElement[bool]:
    """The endpoints an event goes to."""
    return sa.and_(
        webhook_endpoints.c.enabled.is_(True), webhook_endpoints.c.events.like(f"% {event} %")
    )


def job_key(message: str) -> str:
    """One unfinished job per delivery: a redelivery of a pending one adds none."""
    return f"webhook:{message}"


class Outbox:
    """Adds deliveries for events, on the connection of the change."""

    def __init__(self, *, jobs: JobStore, clock: Clock, base_url: str) -> None:
        self.jobs = jobs
        self.clock = clock
        self.base_url = base_url

    async def add(
        self,
        conn: AsyncConnection,
        *,
        endpoints: Sequence[int],
        event: Event,
        data: Mapping[str, Any],
    ) -> list[str]:
        """A delivery of `data` to each endpoint, and its job; their message ids."""
        now = utcnow(self.clock)
        sent = body(event, data, now)
        rows: list[dict[str, Any]] = []
        for endpoint in endpoints:
            message = message_id()
            job = await self.jobs.enqueue(
                DELIVER,
                {"message": message},
                queue=QUEUE,
                max_attempts=ATTEMPTS,
                unique_key=job_key(message),
                conn=conn,
            )
            rows.append(
                {
                    "endpoint_id": endpoint,
                    "message_id": message,
                    "event": event,
                    "payload": sent,
                    "job_id": job.id,
                    "created_at": now,
                }
            )
        if rows:
            await conn.execute(sa.insert(webhook_deliveries), rows)
        return [str(row["message_id"]) for row in rows]

    async def changed(self, conn: AsyncConnection, *, event: str, keys: Sequence[str]) -> None:
        """kurz.links.service.LinkEvents: the links named by cache keys changed; their
        owners' endpoints that want `event` get each link as the API shows it."""
        if not keys:
            return
        by_domain: dict[int, list[str]] = {}
        for key in keys:
            domain_id, code = codes.split_key(key)
            by_domain.setdefault(domain_id, []).append(code)
        named = sa.or_(
            *(
                sa.and_(links.c.domain_id == domain_id, links.c.code.in_(in_domain))
                for domain_id, in_domain in by_domain.items()
            )
        )
        rows = (
            await conn.execute(
                sa.select(links.c.id, webhook_endpoints.c.id.label("endpoint"))
                .select_from(
                    links.join(webhook_endpoints, webhook_endpoints.c.user_id == links.c.user_id)
                )
                .where(named, wants(event))
                .order_by(links.c.id, webhook_endpoints.c.id)
            )
        ).all()
        if not rows:
            return
        endpoints: dict[int, list[int]] = {}
        for link_id, endpoint in rows:
            endpoints.setdefault(link_id, []).append(endpoint)
        read = await link_queries.read_many(conn=conn, ids=list(endpoints), base_url=self.base_url)
        typed = _LINK_EVENTS[event]
        for link_id, to in endpoints.items():
            data = read[link_id].model_dump(mode="json")
            await self.add(conn, endpoints=to, event=typed, data=data)

    async def import_finished(
        self, conn: AsyncConnection, *, user_id: int, finished: ImportFinished
    ) -> list[str]:
        """An import.finished event for the user who ran the import: call it in the
        transaction that marks the import finished (or failed). The message ids."""
        endpoints = (
            await conn.execute(
                sa.select(webhook_endpoints.c.id)
                .where(webhook_endpoints.c.user_id == user_id, wants("import.finished"))
                .order_by(webhook_endpoints.c.id)
            )
        ).scalars()
        return await self.add(
            conn,
            endpoints=list(endpoints),
            event="import.finished",
            data=finished.model_dump(mode="json"),
        )
