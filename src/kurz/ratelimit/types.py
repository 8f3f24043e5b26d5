"""The one interface every limiter backend implements."""

from __future__ import annotations

from typing import Protocol

from kurz.ratelimit.gcra import Decision
from kurz.ratelimit.policy import Policy


class Limiter(Protocol):
    async def check(self, policy: Policy, key: str, cost: int = 1) -> Decision:
        """Take `cost` tokens from `key`'s bucket under `policy`, if it has them."""
        ...

    async def peek(self, policy: Policy, key: str, cost: int = 1) -> Decision:
        """What `check` would answer now, taking nothing: for limits that only
        failures spend (a sign-in asks first, and spends only if it fails)."""
        ...
