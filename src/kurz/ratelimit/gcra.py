"""GCRA, the Generic Cell Rate Algorithm: a token bucket kept as one timestamp.

Instead of a token count and a refill time, each key stores its theoretical arrival
time (TAT): when the bucket would be full again if nothing more arrived. A request
of cost c at time `now` pushes TAT to max(TAT, now) + c*T; it is allowed while that
stays within `capacity` (burst x T) of now. One number per key, and one comparison.
The Redis backend runs the same arithmetic in Lua (kurz/ratelimit/redis.py).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from kurz.ratelimit.policy import Policy

# Epoch seconds as floats resolve to about 0.2 us, and TAT is a running sum of T, so
# a client at exactly the rate can land a hair past the limit. A request may therefore
# pass up to 1 us early; the Lua script uses the same tolerance.
EPSILON = 1e-6


class Decision(NamedTuple):
    """The answer to one check, with what the RateLimit header fields need.

    A NamedTuple rather than a frozen dataclass: it is built on every redirect, and a
    tuple is built several times faster.
    """

    policy: Policy
    allowed: bool
    # Requests that could still be made right now.
    remaining: int
    # Seconds until the next request would be allowed (0 while remaining > 0).
    retry_after: float
    # Seconds until the bucket is full again.
    reset_after: float

    @property
    def window(self) -> int:
        """The RateLimit `t` parameter: seconds within which `remaining` is all there is."""
        seconds = self.retry_after if self.remaining == 0 else self.reset_after
        return math.ceil(seconds)


def step(tat: float | None, now: float, policy: Policy, cost: int = 1) -> tuple[bool, float]:
    """One GCRA check: (allowed, the TAT to keep). A denied check changes nothing."""
    base = now if tat is None or tat < now else tat
    new_tat = base + cost * policy.interval
    if new_tat - now <= policy.capacity + EPSILON:
        return True, new_tat
    return False, base


_tuple = tuple.__new__


def decide(policy: Policy, allowed: bool, ahead: float) -> Decision:
    """Build the decision from how far the kept TAT runs ahead of now."""
    if ahead < 0.0:
        ahead = 0.0
    interval = policy.interval
    headroom = policy.capacity + EPSILON - ahead
    if headroom >= interval:
        # True division, not //: float floor division costs more the larger the
        # quotient, and the 1 us tolerance already dwarfs its rounding. Capped at the
        # burst: the tolerance must never show as an extra token.
        remaining = min(int(headroom / interval), policy.burst)
        retry_after = 0.0
    else:
        remaining = 0
        # Positive: headroom < interval means ahead > capacity + EPSILON - interval.
        retry_after = ahead - policy.capacity + interval
    # tuple.__new__ skips NamedTuple's Python-level __new__: this runs on every redirect.
    return _tuple(Decision, (policy, allowed, remaining, retry_after, ahead))
