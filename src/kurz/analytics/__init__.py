"""Click analytics: events recorded on the redirect path, counted later in rollups."""

from kurz.agents import Agent, Classifier, DeviceClass, classify
from kurz.analytics.events import (
    ClickEvent,
    DailySalt,
    Visits,
    click_event,
    from_request,
    referrer_host,
    visitor_hash,
)
from kurz.analytics.queue import BatchQueue, Drainer, batch_id
from kurz.analytics.store import ClickStore, record

__all__ = [
    "Agent",
    "BatchQueue",
    "Classifier",
    "ClickEvent",
    "ClickStore",
    "DailySalt",
    "DeviceClass",
    "Drainer",
    "Visits",
    "batch_id",
    "classify",
    "click_event",
    "from_request",
    "record",
    "referrer_host",
    "visitor_hash",
]
