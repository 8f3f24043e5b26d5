"""The webhooks' jobs: sending a delivery, and ending a round of clicks."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kurz.jobs import Registry
from kurz.webhooks.clicks import COLLECT, Clicks
from kurz.webhooks.delivery import Deliverer
from kurz.webhooks.outbox import ATTEMPTS, DELIVER


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """After failed attempt n: base * factor**(n-1) seconds, at most `cap`, give or take
    `jitter` of it (so that deliveries that failed together spread out).

    The default waits 15 s, 1 min, 4 min, 16 min, 64 min, 4.3 h, then 8 h twice: the
    ninth and last attempt comes about 21.7 hours after the first (17 to 26 with the
    jitter), and a receiver that is down for most of a day loses nothing.
    """

    base: float = 15.0
    factor: float = 4.0
    cap: float = 8 * 3_600.0
    jitter: float = 0.2
    rng: Callable[[], float] = field(default=random.random)

    def __call__(self, attempts: int) -> float:
        exponent = min(max(attempts - 1, 0), 64)
        ceiling = min(self.cap, self.base * self.factor**exponent)
        return ceiling * (1.0 + self.jitter * (2.0 * self.rng() - 1.0))

    def delays(self, attempts: int = ATTEMPTS) -> list[float]:
        """The waits between `attempts` attempts, without the jitter."""
        plain = RetrySchedule(self.base, self.factor, self.cap, 0.0)
        return [plain(n) for n in range(1, attempts)]


def register(
    registry: Registry,
    *,
    deliverer: Deliverer,
    clicks: Clicks,
    retries: RetrySchedule | None = None,
) -> None:
    """Send deliveries, retried over about a day; end click rounds."""

    @registry.job(DELIVER, timeout=120.0, max_attempts=ATTEMPTS, retries=retries or RetrySchedule())
    async def deliver(payload: dict[str, Any]) -> None:
        await deliverer.deliver(str(payload["message"]))

    @registry.job(COLLECT, timeout=120.0)
    async def collect(payload: dict[str, Any]) -> None:
        await clicks.collect(int(payload["endpoint"]))
