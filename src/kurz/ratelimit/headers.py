"""The RateLimit-Policy and RateLimit header fields (IETF httpapi RateLimit draft).

Both are Structured Field lists whose items are the policy's name as a String, with
Integer parameters: `RateLimit-Policy: "api";q=120;w=60` and `RateLimit: "api";r=37;t=12`.
Policy names are restricted to lowercase tokens (kurz.ratelimit.policy), so they need
no escaping inside the quotes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from kurz.ratelimit.gcra import Decision
from kurz.ratelimit.policy import Policy


def policy_field(policy: Policy) -> str:
    return policy.field_value.decode()


def limit_field(decision: Decision) -> str:
    return _limit_value(decision).decode()


def _limit_value(decision: Decision) -> bytes:
    # Decision.window, inlined: this runs on every limited redirect.
    policy, _, remaining, retry, reset = decision
    return b"%s;r=%d;t=%d" % (policy.item, remaining, math.ceil(reset if remaining else retry))


def retry_after(decision: Decision) -> str:
    """Retry-After in whole seconds: never earlier than the RateLimit `t` parameter."""
    return str(max(1, math.ceil(decision.retry_after), decision.window))


# The statuses that send a client elsewhere (304 only confirms what it has).
REDIRECTS = frozenset({301, 302, 303, 307, 308})


def carries_fields(status: int, decision: Decision) -> bool:
    """Whether an answer of `status` carries the fields: always, except a redirect
    while more than half the policy's burst is left.

    On a redirect the fields help nobody while the client is far from its limit, and
    the draft warns that a low `r` on one may make a client wait; it lets a server
    leave them out then (ADR 0003).
    """
    return status not in REDIRECTS or decision.remaining * 2 <= decision.policy.burst


def with_fields(
    headers: Iterable[tuple[bytes, bytes]], decision: Decision
) -> list[tuple[bytes, bytes]]:
    """Raw ASGI headers with the two fields appended, in one new list."""
    return [
        *headers,
        (b"ratelimit-policy", decision.policy.field_value),
        (b"ratelimit", _limit_value(decision)),
    ]
