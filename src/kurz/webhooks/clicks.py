"""link.clicked: the clicks of each batch kept for the endpoints that want them, and
sent in rounds, at most one a second per endpoint (ADR 0021).

The click store calls `Clicks.recorded` in the transaction that records a batch: the
batch's clicks on links whose owners have such endpoints go into
webhook_pending_clicks, a row per endpoint, and the endpoint's round job is enqueued
(one per round: its unique key names the round). The job (`collect`) ends the round:
it takes the endpoint's pending rows, up to MAX_CLICKS, into one link.clicked
delivery, and starts the next round, no sooner than a second after this one.

The endpoint's row is the lock between the two: a batch reads the round under a
shared lock, the job moves it on under an exclusive one. A batch that commits before
the job takes its lock is in that round; one that waits for the job's commit reads
the next round, and enqueues that round's job. No click is left without a job to
take it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import links, webhook_endpoints, webhook_pending_clicks
from kurz.jobs import JobStore
from kurz.links import queries as link_queries
from kurz.types import Clock
from kurz.webhooks.models import Event
from kurz.webhooks.outbox import QUEUE, Outbox, wants

if TYPE_CHECKING:
    from kurz.analytics.events import ClickEvent

COLLECT = "webhook-clicks"
# Clicks in one delivery at most; the rest wait for the next round, a second later.
MAX_CLICKS = 1_000
# A round at most this often per endpoint.
SPACING = 1.0
# Statements take the batch's links this many at a time (SQLite binds at most 32,766).
_CHUNK = 1_000
_CLICKED: Event = "link.clicked"


def round_key(endpoint: int, round_: int) -> str:
    return f"webhook-clicks:{endpoint}:{round_}"


def _click(event: ClickEvent) -> dict[str, Any]:
    """What an endpoint is told of a click: no visitor hash (a day's pseudonym)."""
    link_id, at, referrer, browser, os, device, bot, country, _visitor, city, variant = event
    return {
        "link": link_id,
        "at": at,
        "referrer_host": referrer,
        "browser": browser,
        "os": os,
        "device": device,
        "bot": bot,
        "country": country,
        "city": city,
        "variant": variant,
    }


class Clicks:
    """The click store's follower, and the round job's work."""

    def __init__(
        self, *, db: Database, jobs: JobStore, outbox: Outbox, clock: Clock, base_url: str
    ) -> None:
        self.db = db
        self.jobs = jobs
        self.outbox = outbox
        self.clock = clock
        self.base_url = base_url

    async def recorded(self, conn: AsyncConnection, events: Sequence[ClickEvent]) -> None:
        """In the transaction that recorded `events`: keep them for the endpoints that
        want their links' clicks. Costs one small read when none does."""
        anyone = await conn.execute(
            sa.select(webhook_endpoints.c.id).where(wants(_CLICKED)).limit(1)
        )
        if anyone.first() is None:
            return
        link_ids = sorted({event[0] for event in events})
        to: dict[int, list[int]] = {}
        for start in range(0, len(link_ids), _CHUNK):
            rows = await conn.execute(
                sa.select(links.c.id, webhook_endpoints.c.id.label("endpoint"))
                .select_from(
                    links.join(webhook_endpoints, webhook_endpoints.c.user_id == links.c.user_id)
                )
                .where(links.c.id.in_(link_ids[start : start + _CHUNK]), wants(_CLICKED))
            )
            for link_id, endpoint in rows:
                to.setdefault(link_id, []).append(endpoint)
        if not to:
            return
        per_endpoint: dict[int, list[dict[str, Any]]] = {}
        for event in events:
            for endpoint in to.get(event[0], ()):
                per_endpoint.setdefault(endpoint, []).append(_click(event))
        # In id order, so that concurrent batches take the endpoints' locks in one order.
        ids = sorted(per_endpoint)
        locked = await conn.execute(
            sa.select(
                webhook_endpoints.c.id,
                webhook_endpoints.c.clicks_round,
                webhook_endpoints.c.clicks_collected_at,
            )
            .where(webhook_endpoints.c.id.in_(ids))
            .order_by(webhook_endpoints.c.id)
            .with_for_update(read=True)
        )
        rounds = {row.id: (row.clicks_round, row.clicks_collected_at) for row in locked}
        await conn.execute(
            sa.insert(webhook_pending_clicks),
            [
                {
                    "endpoint_id": endpoint,
                    "clicks": orjson.dumps(per_endpoint[endpoint]).decode(),
                    "count": len(per_endpoint[endpoint]),
                }
                for endpoint in ids
                if endpoint in rounds
            ],
        )
        now = utcnow(self.clock)
        for endpoint, (round_, collected_at) in rounds.items():
            delay = 0.0
            if collected_at is not None:
                delay = (collected_at + timedelta(seconds=SPACING) - now).total_seconds()
            await self.jobs.enqueue(
                COLLECT,
                {"endpoint": endpoint},
                queue=QUEUE,
                delay=delay,
                unique_key=round_key(endpoint, round_),
                conn=conn,
            )

    async def collect(self, endpoint: int) -> int:
        """End the endpoint's round: its pending clicks (up to MAX_CLICKS) into one
        link.clicked delivery. How many clicks it carries."""
        async with self.db.write(READ_COMMITTED) as conn:
            now = utcnow(self.clock)
            moved = (
                await conn.execute(
                    sa.update(webhook_endpoints)
                    .where(webhook_endpoints.c.id == endpoint)
                    .values(
                        clicks_round=webhook_endpoints.c.clicks_round + 1,
                        clicks_collected_at=now,
                    )
                    .returning(
                        webhook_endpoints.c.clicks_round,
                        webhook_endpoints.c.enabled,
                        webhook_endpoints.c.events,
                    )
                )
            ).first()
            if moved is None:
                # Deleted, and its pending clicks with it.
                return 0
            taken, left = await self._take(conn, endpoint)
            if left:
                await self.jobs.enqueue(
                    COLLECT,
                    {"endpoint": endpoint},
                    queue=QUEUE,
                    delay=SPACING,
                    unique_key=round_key(endpoint, moved.clicks_round),
                    conn=conn,
                )
            if not taken or not moved.enabled or f" {_CLICKED} " not in moved.events:
                # Turned off since the clicks were kept: they are dropped with the round.
                return 0
            clicks = await self._described(conn, taken)
            await self.outbox.add(
                conn,
                endpoints=[endpoint],
                event=_CLICKED,
                data={"count": len(clicks), "clicks": clicks},
            )
            return len(clicks)

    async def _take(self, conn: AsyncConnection, endpoint: int) -> tuple[list[Any], bool]:
        """The endpoint's oldest pending clicks, up to MAX_CLICKS, deleted (a row that
        holds more keeps the rest); and whether any are left."""
        pending = webhook_pending_clicks.c
        taken: list[Any] = []
        rows = await conn.execute(
            sa.select(pending.id, pending.clicks)
            .where(pending.endpoint_id == endpoint)
            .order_by(pending.id)
            .limit(MAX_CLICKS + 1)
        )
        done: list[int] = []
        left = False
        for row in rows.all():
            if len(taken) >= MAX_CLICKS:
                left = True
                break
            clicks = orjson.loads(row.clicks)
            room = MAX_CLICKS - len(taken)
            taken.extend(clicks[:room])
            if len(clicks) > room:
                rest = clicks[room:]
                await conn.execute(
                    sa.update(webhook_pending_clicks)
                    .where(pending.id == row.id)
                    .values(clicks=orjson.dumps(rest).decode(), count=len(rest))
                )
                left = True
                break
            done.append(row.id)
        if done:
            await conn.execute(sa.delete(webhook_pending_clicks).where(pending.id.in_(done)))
        return taken, left

    async def _described(self, conn: AsyncConnection, taken: list[Any]) -> list[dict[str, Any]]:
        """The clicks with their links named as the API names them (code, domain)."""
        ids = sorted({click["link"] for click in taken})
        named: dict[int, dict[str, str]] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            named |= await link_queries.named_many(conn=conn, ids=chunk, base_url=self.base_url)
        described = []
        for click in taken:
            link = named.get(click.pop("link"))
            if link is not None:
                at = datetime.fromtimestamp(click.pop("at"), UTC).isoformat()
                described.append({**link, "at": at.replace("+00:00", "Z"), **click})
        return described
