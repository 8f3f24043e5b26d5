"""Webhooks: endpoints users register, events enqueued with the change that makes
them, and signed deliveries sent by kurz.jobs (docs/webhooks.md, ADR 0021)."""

from kurz.webhooks.clicks import Clicks
from kurz.webhooks.delivery import Deliverer
from kurz.webhooks.models import EVENTS, Event, ImportFinished
from kurz.webhooks.outbox import Outbox
from kurz.webhooks.sender import Sender
from kurz.webhooks.service import Webhooks
from kurz.webhooks.signing import SigningKeys

__all__ = [
    "EVENTS",
    "Clicks",
    "Deliverer",
    "Event",
    "ImportFinished",
    "Outbox",
    "Sender",
    "SigningKeys",
    "Webhooks",
]
