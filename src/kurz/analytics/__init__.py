"""Click analytics: events recorded on the redirect path, counted later in rollups."""

from kurz.analytics.events import (
    Agent,
    Classifier,
    ClickEvent,
    DailySalt,
    DeviceClass,
    classify,
    referrer_host,
    visitor_hash,
)
from kurz.analytics.queue import BatchQueue, Drainer
from kurz.analytics.store import record

__all__ = [
    "Agent",
    "BatchQueue",
    "Classifier",
    "ClickEvent",
    "DailySalt",
    "DeviceClass",
    "Drainer",
    "classify",
    "record",
    "referrer_host",
    "visitor_hash",
]
