"""Redis while it answers, the in-process limiter while it does not."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from kurz.extras import redis_error
from kurz.ratelimit.gcra import Decision
from kurz.ratelimit.memory import MemoryLimiter
from kurz.ratelimit.policy import Policy
from kurz.ratelimit.redis import RedisLimiter

log = logging.getLogger("kurz.ratelimit")


class FallbackLimiter:
    """Keeps limiting through a Redis outage, on each process's own buckets.

    A failed Redis call switches to the in-process limiter and logs once; Redis is
    tried again every `retry_after` seconds, and the switch back is logged once too.
    During an outage each process limits on its own, so N processes together allow up
    to N times the policy: serving on is chosen over refusing (docs/decisions/0003).
    """

    def __init__(
        self,
        primary: RedisLimiter,
        fallback: MemoryLimiter,
        *,
        retry_after: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._primary = primary
        self._fallback = fallback
        self._retry_after = retry_after
        self._monotonic = monotonic
        self._down_until: float | None = None

    @property
    def degraded(self) -> bool:
        return self._down_until is not None

    async def check(self, policy: Policy, key: str, cost: int = 1) -> Decision:
        return await self._run(policy, key, cost, peek=False)

    async def peek(self, policy: Policy, key: str, cost: int = 1) -> Decision:
        return await self._run(policy, key, cost, peek=True)

    async def _run(self, policy: Policy, key: str, cost: int, *, peek: bool) -> Decision:
        fallback = self._fallback.peek if peek else self._fallback.check
        if self._down_until is not None and self._monotonic() < self._down_until:
            return await fallback(policy, key, cost)
        try:
            primary = self._primary.peek if peek else self._primary.check
            decision = await primary(policy, key, cost)
        except (redis_error(), OSError) as exc:
            if self._down_until is None:
                log.warning(
                    "Redis unreachable (%s): rate limits are per process until it is back", exc
                )
            self._down_until = self._monotonic() + self._retry_after
            return await fallback(policy, key, cost)
        if self._down_until is not None:
            log.warning("Redis is back: rate limits are shared again")
            self._down_until = None
        return decision
