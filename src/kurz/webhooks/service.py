"""The webhooks use cases: endpoints, their secrets, their deliveries; no HTTP.

Endpoints belong to users. Every use case acts on the caller's own (an admin's too:
an endpoint receives its owner's events, and an admin has no business reading
another user's deliveries), and another user's is a 404.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa

from kurz.auth.models import MAX_ID, Principal
from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import webhook_deliveries, webhook_endpoints
from kurz.errors import Problem, invalid, not_found
from kurz.jobs import JobStore
from kurz.types import Clock
from kurz.webhooks import queries
from kurz.webhooks.addresses import Refused, check_host
from kurz.webhooks.models import (
    DeliveryDetail,
    DeliveryPagination,
    DeliveryRead,
    DeliveryStatus,
    SecretRotation,
    WebhookCreate,
    WebhookCreated,
    WebhookPagination,
    WebhookRead,
    WebhookUpdate,
)
from kurz.webhooks.outbox import ATTEMPTS, DELIVER, QUEUE, job_key
from kurz.webhooks.signing import SigningKeys, new_nonce

# Endpoints a user may have: enough for any integration, few enough that fanning an
# event out stays cheap.
MAX_ENDPOINTS = 20


def webhook_not_found(webhook_id: object) -> Problem:
    return not_found(f"No webhook {str(webhook_id)[:32]}.")


def delivery_not_found(delivery_id: object) -> Problem:
    return not_found(f"No delivery {str(delivery_id)[:32]} of this webhook.")


def checked_id(text: str) -> int | None:
    """An id from a path, or None when the text cannot be one (it names nothing)."""
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_ID:
        return None
    return int(text)


class Webhooks:
    """The use cases behind /api/v1/webhooks and the /_/webhooks pages."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        jobs: JobStore,
        keys: SigningKeys,
        allow_private: bool,
    ) -> None:
        self.db = db
        self.clock = clock
        self.jobs = jobs
        self.keys = keys
        self.allow_private = allow_private

    def _check_url(self, url: str) -> None:
        try:
            check_host(urlsplit(url).hostname or "", allow_private=self.allow_private)
        except Refused as exc:
            raise invalid(
                "url", f"{exc}: webhooks are refused there (docs/webhooks.md, SSRF)"
            ) from None

    def _id(self, text: str) -> int:
        found = checked_id(text)
        if found is None:
            raise webhook_not_found(text)
        return found

    async def create(self, *, principal: Principal, webhook_in: WebhookCreate) -> WebhookCreated:
        """A new endpoint, with its signing secret (shown this once)."""
        self.keys.check()
        self._check_url(webhook_in.url)
        now = utcnow(self.clock)
        nonce = new_nonce()
        async with self.db.write(READ_COMMITTED) as conn:
            count = await conn.execute(
                sa.select(sa.func.count())
                .select_from(webhook_endpoints)
                .where(webhook_endpoints.c.user_id == principal.user_id)
            )
            if count.scalar_one() >= MAX_ENDPOINTS:
                raise Problem(
                    409,
                    "too-many-webhooks",
                    "Too Many Webhooks",
                    f"A user may have {MAX_ENDPOINTS} webhooks; delete one first.",
                )
            row = (
                await conn.execute(
                    sa.insert(webhook_endpoints)
                    .values(
                        user_id=principal.user_id,
                        url=webhook_in.url,
                        description=webhook_in.description,
                        events=queries.stored_events(webhook_in.events),
                        enabled=webhook_in.enabled,
                        secret_nonce=nonce,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(*webhook_endpoints.c)
                )
            ).one()
        return WebhookCreated(
            **queries.read(row, now).model_dump(), secret=self.keys.shown(row.id, nonce)
        )

    async def list_(
        self, *, principal: Principal, limit: int, cursor: str | None
    ) -> WebhookPagination:
        async with self.db.read() as conn:
            rows, after = await queries.page(
                conn, user_id=principal.user_id, limit=limit, cursor=cursor
            )
        now = utcnow(self.clock)
        return WebhookPagination(items=[queries.read(row, now) for row in rows], next_cursor=after)

    async def get(self, *, principal: Principal, webhook_id: str) -> WebhookRead:
        async with self.db.read() as conn:
            row = await queries.get(
                conn, user_id=principal.user_id, webhook_id=self._id(webhook_id)
            )
        if row is None:
            raise webhook_not_found(webhook_id)
        return queries.read(row, utcnow(self.clock))

    async def update(
        self, *, principal: Principal, webhook_id: str, webhook_in: WebhookUpdate
    ) -> WebhookRead:
        """The fields sent, changed (null for one that cannot be null is a 422)."""
        changes: dict[str, object] = {}
        sent = webhook_in.model_fields_set
        for field in ("url", "events", "description", "enabled"):
            if field in sent and getattr(webhook_in, field) is None:
                raise invalid(field, "cannot be null")
        if webhook_in.url is not None:
            self._check_url(webhook_in.url)
            changes["url"] = webhook_in.url
        if webhook_in.events is not None:
            changes["events"] = queries.stored_events(webhook_in.events)
        if webhook_in.description is not None:
            changes["description"] = webhook_in.description
        if webhook_in.enabled is not None:
            changes["enabled"] = webhook_in.enabled
        now = utcnow(self.clock)
        async with self.db.write(READ_COMMITTED) as conn:
            row = (
                await conn.execute(
                    sa.update(webhook_endpoints)
                    .where(*queries.owned(principal.user_id, self._id(webhook_id)))
                    .values(**changes, updated_at=now)
                    .returning(*webhook_endpoints.c)
                )
            ).first()
        if row is None:
            raise webhook_not_found(webhook_id)
        return queries.read(row, now)

    async def delete(self, *, principal: Principal, webhook_id: str) -> None:
        """The endpoint, its deliveries and the clicks kept for it; jobs still queued
        for them find nothing to send."""
        async with self.db.write(READ_COMMITTED) as conn:
            gone = await conn.execute(
                sa.delete(webhook_endpoints)
                .where(*queries.owned(principal.user_id, self._id(webhook_id)))
                .returning(webhook_endpoints.c.id)
            )
            if gone.first() is None:
                raise webhook_not_found(webhook_id)

    async def rotate_secret(
        self, *, principal: Principal, webhook_id: str, rotation: SecretRotation
    ) -> WebhookCreated:
        """A new signing secret (shown this once); the old one signs beside it for
        `expire_previous_in` seconds, so that a receiver can move over without loss."""
        self.keys.check()
        now = utcnow(self.clock)
        nonce = new_nonce()
        until = now + timedelta(seconds=rotation.expire_previous_in)
        async with self.db.write(READ_COMMITTED) as conn:
            row = (
                await conn.execute(
                    sa.update(webhook_endpoints)
                    .where(*queries.owned(principal.user_id, self._id(webhook_id)))
                    .values(
                        previous_nonce=webhook_endpoints.c.secret_nonce,
                        previous_until=until if rotation.expire_previous_in else None,
                        secret_nonce=nonce,
                        updated_at=now,
                    )
                    .returning(*webhook_endpoints.c)
                )
            ).first()
        if row is None:
            raise webhook_not_found(webhook_id)
        return WebhookCreated(
            **queries.read(row, now).model_dump(), secret=self.keys.shown(row.id, nonce)
        )

    async def deliveries(
        self,
        *,
        principal: Principal,
        webhook_id: str,
        limit: int,
        cursor: str | None,
        status: DeliveryStatus | None = None,
    ) -> DeliveryPagination:
        async with self.db.read() as conn:
            endpoint = self._id(webhook_id)
            if await queries.get(conn, user_id=principal.user_id, webhook_id=endpoint) is None:
                raise webhook_not_found(webhook_id)
            items, after = await queries.deliveries(
                conn, endpoint_id=endpoint, limit=limit, cursor=cursor, status=status
            )
        return DeliveryPagination(items=items, next_cursor=after)

    async def delivery(
        self, *, principal: Principal, webhook_id: str, delivery_id: str
    ) -> DeliveryDetail:
        """One delivery, with the body it sends."""
        found = checked_id(delivery_id)
        async with self.db.read() as conn:
            endpoint = self._id(webhook_id)
            if await queries.get(conn, user_id=principal.user_id, webhook_id=endpoint) is None:
                raise webhook_not_found(webhook_id)
            row = (
                None
                if found is None
                else await queries.get_delivery(conn, endpoint_id=endpoint, delivery_id=found)
            )
        if row is None:
            raise delivery_not_found(delivery_id)
        return queries.detail(row)

    async def redeliver(
        self, *, principal: Principal, webhook_id: str, delivery_id: str
    ) -> DeliveryRead:
        """Send a delivery again, with fresh attempts: a dead one, or one delivered
        already (the same webhook-id: a receiver that has it may skip it). A pending one
        is a 409: it is being sent."""
        found = checked_id(delivery_id)
        async with self.db.write(READ_COMMITTED) as conn:
            endpoint = self._id(webhook_id)
            if await queries.get(conn, user_id=principal.user_id, webhook_id=endpoint) is None:
                raise webhook_not_found(webhook_id)
            row = (
                None
                if found is None
                else await queries.get_delivery(conn, endpoint_id=endpoint, delivery_id=found)
            )
            if row is None:
                raise delivery_not_found(delivery_id)
            job = None
            if row.status != "pending":
                job = await self.jobs.enqueue(
                    DELIVER,
                    {"message": row.message_id},
                    queue=QUEUE,
                    max_attempts=ATTEMPTS,
                    unique_key=job_key(row.message_id),
                    conn=conn,
                )
            if job is None or job.id == row.job_id:
                raise Problem(
                    409,
                    "delivery-pending",
                    "Delivery Pending",
                    "This delivery is waiting for its next attempt already.",
                )
            await conn.execute(
                sa.update(webhook_deliveries)
                .where(webhook_deliveries.c.id == row.id)
                .values(job_id=job.id, delivered_at=None)
            )
            again = await queries.get_delivery(conn, endpoint_id=endpoint, delivery_id=row.id)
        return queries.delivery(again)
