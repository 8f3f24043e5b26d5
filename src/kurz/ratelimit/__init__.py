"""Rate limiting: GCRA token buckets, in process or atomic in Redis.

Depends on nothing else in kurz but its clock type, so it can be used on its own:
`from kurz.ratelimit import MemoryLimiter, parse_policy`.
"""

from kurz.ratelimit.fallback import FallbackLimiter
from kurz.ratelimit.gcra import Decision
from kurz.ratelimit.headers import (
    carries_fields,
    limit_field,
    policy_field,
    retry_after,
    with_fields,
)
from kurz.ratelimit.memory import MemoryLimiter
from kurz.ratelimit.policy import Policy, parse_policy
from kurz.ratelimit.redis import RedisLimiter
from kurz.ratelimit.types import Limiter

__all__ = [
    "Decision",
    "FallbackLimiter",
    "Limiter",
    "MemoryLimiter",
    "Policy",
    "RedisLimiter",
    "carries_fields",
    "limit_field",
    "parse_policy",
    "policy_field",
    "retry_after",
    "with_fields",
]
