"""Sending one delivery: the job handler's work, recorded on the delivery's row."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import webhook_deliveries, webhook_endpoints
from kurz.errors import Problem
from kurz.types import Clock
from kurz.webhooks.sender import Attempt, Sender
from kurz.webhooks.signing import SigningKeys, signature


class DeliveryFailed(Exception):
    """An attempt that was not answered 2xx: the job fails, and is retried or dead."""


class Deliverer:
    """Signs and sends a delivery, and records what came of it."""

    def __init__(self, *, db: Database, clock: Clock, keys: SigningKeys, sender: Sender) -> None:
        self.db = db
        self.clock = clock
        self.keys = keys
        self.sender = sender

    async def _load(self, message: str) -> Any:
        query = (
            sa.select(
                webhook_deliveries.c.id,
                webhook_deliveries.c.payload,
                webhook_deliveries.c.delivered_at,
                webhook_endpoints.c.id.label("endpoint"),
                webhook_endpoints.c.url,
                webhook_endpoints.c.enabled,
                webhook_endpoints.c.secret_nonce,
                webhook_endpoints.c.previous_nonce,
                webhook_endpoints.c.previous_until,
            )
            .select_from(
                webhook_deliveries.join(
                    webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id
                )
            )
            .where(webhook_deliveries.c.message_id == message)
        )
        async with self.db.read() as conn:
            return (await conn.execute(query)).first()

    def _signing(self, row: Any) -> list[bytes]:
        """The endpoint's secret, and its previous one while that still signs."""
        found = [self.keys.secret(row.endpoint, row.secret_nonce)]
        until = row.previous_until
        if row.previous_nonce is not None and until is not None and until > utcnow(self.clock):
            found.append(self.keys.secret(row.endpoint, row.previous_nonce))
        return found

    async def deliver(self, message: str) -> Attempt | None:
        """One attempt at the delivery `message`; None if there is nothing to send (its
        endpoint was deleted, or an earlier run of this job delivered it)."""
        row = await self._load(message)
        if row is None or row.delivered_at is not None:
            return None
        if not row.enabled:
            attempt = Attempt(False, None, "the webhook is disabled")
        else:
            try:
                signing = self._signing(row)
            except Problem as exc:
                attempt = Attempt(False, None, exc.detail)
            else:
                at = self.clock()
                body = row.payload.encode()
                headers = {
                    "webhook-id": message,
                    "webhook-timestamp": str(int(at)),
                    "webhook-signature": signature(signing, message, at, body),
                }
                attempt = await self.sender.post(row.url, headers=headers, body=body)
        now = utcnow(self.clock)
        async with self.db.write(READ_COMMITTED) as conn:
            await conn.execute(
                sa.update(webhook_deliveries)
                .where(webhook_deliveries.c.id == row.id)
                .values(
                    attempts=webhook_deliveries.c.attempts + 1,
                    last_status=attempt.status,
                    last_error=attempt.error,
                    last_attempt_at=now,
                    delivered_at=now if attempt.ok else None,
                )
            )
        if not attempt.ok:
            raise DeliveryFailed(attempt.error or "failed")
        return attempt
