"""The in-process limiter, for the embedded setup."""

from __future__ import annotations

from collections import OrderedDict

from kurz.ratelimit.gcra import EPSILON, Decision, decide, step
from kurz.ratelimit.policy import Policy
from kurz.types import Clock

_tuple = tuple.__new__


class MemoryLimiter:
    """GCRA in bounded dicts, one per policy: least recently checked keys dropped first.

    A key whose bucket is full again (TAT not after now) holds no information: every
    check drains such keys from the least recently checked end, so memory follows the
    keys in use. Past `max_keys` keys in one policy, the least recently checked key
    goes whatever its state: a flood of distinct keys costs bounded memory, at the
    price of forgetting the oldest buckets (which then start full). Checks never await,
    so one event loop needs no lock. An OrderedDict, not a dict: taking a dict's first
    key after many deletions from its front scans every deleted slot, which made each
    check of a key flood slower the more keys it held (ADR 0003 has the figures).
    """

    def __init__(self, clock: Clock, *, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._max_keys = max_keys
        # Keyed by policy name, then by key: no tuple to build and hash per check.
        self._tats: dict[str, OrderedDict[str, float]] = {}

    async def check(self, policy: Policy, key: str, cost: int = 1) -> Decision:
        return self.check_now(policy, key, cost)

    def check_now(self, policy: Policy, key: str, cost: int = 1) -> Decision:
        """The same check, synchronous: for callers that are not coroutines.

        This is gcra.step followed by gcra.decide, written out in one function: it runs
        on every redirect, and the two calls and the tuple between them cost a large
        share of it (ADR 0003). tests/unit/ratelimit/test_memory.py holds it equal to
        the two.
        """
        now = self._clock()
        tats = self._tats.get(policy.name)
        if tats is None:
            tats = self._tats[policy.name] = OrderedDict()
        tat = tats.get(key, now)
        if tat < now:
            tat = now
        interval = policy.interval
        ceiling = policy.capacity + EPSILON
        new_tat = tat + cost * interval
        ahead = new_tat - now
        if ahead <= ceiling:
            allowed = True
            # A bucket just drawn from is not full (its TAT is after now): keep it as
            # the newest.
            tats[key] = new_tat
            tats.move_to_end(key)
            if len(tats) > self._max_keys:
                tats.popitem(last=False)
        else:
            allowed = False
            ahead = tat - now
            if key in tats:
                tats.move_to_end(key)
        # Drain full buckets from the least recently checked end. Each key leaves at
        # most once per time it was added, so this is amortised O(1) a check.
        while tats:
            oldest = next(iter(tats))
            if tats[oldest] > now:
                break
            del tats[oldest]
        headroom = ceiling - ahead
        if headroom >= interval:
            # As in gcra.decide: true division, capped at the burst.
            remaining = int(headroom / interval)
            if remaining > policy.burst:
                remaining = policy.burst
            return _tuple(Decision, (policy, allowed, remaining, 0.0, ahead))
        retry_after = ahead - policy.capacity + interval
        return _tuple(Decision, (policy, allowed, 0, retry_after, ahead))

    async def peek(self, policy: Policy, key: str, cost: int = 1) -> Decision:
        return self.peek_now(policy, key, cost)

    def peek_now(self, policy: Policy, key: str, cost: int = 1) -> Decision:
        """`peek`, synchronous. Not on the redirect path, so gcra's own step and decide
        will do; nothing is stored, not even the key's recency."""
        now = self._clock()
        tats = self._tats.get(policy.name)
        tat = None if tats is None else tats.get(key)
        allowed, kept = step(tat, now, policy, cost)
        return decide(policy, allowed, kept - now)

    def __len__(self) -> int:
        return sum(len(tats) for tats in self._tats.values())
