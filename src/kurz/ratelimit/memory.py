"""The in-process limiter, for the embedded setup."""

from __future__ import annotations

from kurz.ratelimit.gcra import Decision, decide, step
from kurz.ratelimit.policy import Policy
from kurz.types import Clock


class MemoryLimiter:
    """GCRA in a bounded dict: at most `max_keys` keys, least recently used dropped first.

    A key whose bucket is full again (TAT in the past) holds no information and is
    dropped when met. Past `max_keys`, the least recently checked key goes: a flood of
    distinct keys costs bounded memory, at the price of forgetting the oldest buckets
    (which then start full). Checks never await, so one event loop needs no lock.
    """

    def __init__(self, clock: Clock, *, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._tats: dict[tuple[str, str], float] = {}

    async def check(self, policy: Policy, key: str, cost: int = 1) -> Decision:
        return self.check_now(policy, key, cost)

    def check_now(self, policy: Policy, key: str, cost: int = 1) -> Decision:
        """The same check, synchronous: for callers that are not coroutines."""
        now = self._clock()
        slot = (policy.name, key)
        tats = self._tats
        allowed, tat = step(tats.pop(slot, None), now, policy, cost)
        if tat > now:
            # Re-inserting keeps the dict in least-recently-checked order.
            tats[slot] = tat
            if len(tats) > self._max_keys:
                del tats[next(iter(tats))]
        return decide(policy, allowed, tat - now)

    def __len__(self) -> int:
        return len(self._tats)
