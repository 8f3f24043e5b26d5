"""Wall-clock helpers: kurz takes time from an injected Clock, never directly."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from kurz.types import Clock

system_clock: Clock = time.time


def utcnow(clock: Clock) -> datetime:
    return datetime.fromtimestamp(clock(), UTC)
