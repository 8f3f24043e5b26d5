"""Webhook endpoints and deliveries as the API takes and gives them, and the events."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kurz.auth.models import MAX_ID
from kurz.webhooks.addresses import check_url

Event = Literal[
    "link.created",
    "link.updated",
    "link.deleted",
    "link.expired",
    "link.clicked",
    "import.finished",
]
EVENTS: tuple[Event, ...] = (
    "link.created",
    "link.updated",
    "link.deleted",
    "link.expired",
    "link.clicked",
    "import.finished",
)
# What each event says, as the web form and docs/webhooks.md describe it.
EVENT_HINTS: dict[Event, str] = {
    "link.created": "a link was made",
    "link.updated": "a link was changed",
    "link.deleted": "a link was deleted (or retired, long after it expired)",
    "link.expired": "a link reached its expiry",
    "link.clicked": "links were clicked (batched: at most one delivery a second)",
    "import.finished": "an import ended",
}
MAX_URL = 2_000
# How long a rotated secret may go on signing beside the new one: a day, as Stripe.
MAX_OVERLAP = 86_400


def _events(value: list[Event]) -> list[Event]:
    """Each once, in EVENTS's order."""
    return [event for event in EVENTS if event in value]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        max_length=MAX_URL,
        description="Where deliveries are POSTed: an http(s) URL without credentials.",
        examples=["https://hooks.example.com/kurz"],
    )
    events: list[Event] = Field(min_length=1, description="The event types it receives.")
    description: str = Field(default="", max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")
    enabled: bool = True

    _url = field_validator("url")(check_url)
    _ordered = field_validator("events")(_events)


class WebhookUpdate(BaseModel):
    """A change: only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=MAX_URL)
    events: list[Event] | None = Field(default=None, min_length=1)
    description: str | None = Field(default=None, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")
    enabled: bool | None = None

    @field_validator("url")
    @classmethod
    def _checked_url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)

    @field_validator("events")
    @classmethod
    def _ordered(cls, value: list[Event] | None) -> list[Event] | None:
        return None if value is None else _events(value)


class WebhookRead(BaseModel):
    id: int
    url: str
    events: list[Event]
    description: str
    enabled: bool
    created_at: datetime
    updated_at: datetime
    previous_secret_expires_at: datetime | None = Field(
        description="While a rotated secret still signs beside the new one: until when."
    )


class WebhookCreated(WebhookRead):
    # Shown once: at creation and at each rotation.
    secret: str = Field(
        description="The signing secret, `whsec_` and base64, as the Standard Webhooks "
        "specification writes it. Shown in this answer only."
    )


class WebhookPagination(BaseModel):
    items: list[WebhookRead]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class SecretRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expire_previous_in: int = Field(
        default=0,
        ge=0,
        le=MAX_OVERLAP,
        description="Seconds the old secret goes on signing beside the new one (each "
        "delivery then carries both signatures); 0: it stops now.",
    )


DeliveryStatus = Literal["pending", "delivered", "dead"]


class DeliveryRead(BaseModel):
    id: int
    webhook: int
    message_id: str = Field(description="The webhook-id header: the same on every attempt.")
    event: Event
    status: DeliveryStatus = Field(
        description="pending: waiting for its first or next attempt; delivered: answered "
        "2xx; dead: out of attempts (redeliver it by hand)."
    )
    attempts: int = Field(description="Attempts whose outcome was recorded.")
    last_status: int | None = Field(description="The HTTP status of the last attempt.")
    last_error: str | None = Field(description="Why the last attempt failed.")
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = Field(description="When a pending one is tried next.")
    delivered_at: datetime | None
    created_at: datetime


class DeliveryDetail(DeliveryRead):
    payload: str = Field(description="The body sent, byte for byte (JSON).")


class DeliveryPagination(BaseModel):
    items: list[DeliveryRead]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class ImportFinished(BaseModel):
    """The data of an import.finished event: what kurz.imports hands
    `Outbox.import_finished` when an import ends, successfully or not."""

    id: int = Field(ge=1, le=MAX_ID)
    source: str = Field(description="csv, bitly, yourls, kutt, shlink or kurz.")
    status: Literal["finished", "failed"]
    imported: int = Field(ge=0)
    skipped: int = Field(ge=0)
    failed: int = Field(ge=0)
    started_at: datetime
    finished_at: datetime
    error: str | None = Field(default=None, description="Why a failed import stopped.")
