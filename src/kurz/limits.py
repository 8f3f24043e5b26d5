"""What kurz rate-limits: the service's policies, checked against one limiter.

API calls count per API key; redirects and failed authentications per client IP.
The algorithm and its backends are kurz.ratelimit; this module only applies them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, MutableMapping
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import TYPE_CHECKING, Any

from kurz.config import Settings
from kurz.errors import Problem
from kurz.ratelimit import (
    Decision,
    FallbackLimiter,
    Limiter,
    MemoryLimiter,
    Policy,
    RedisLimiter,
    retry_after,
)
from kurz.types import Clock

if TYPE_CHECKING:
    from redis.asyncio import Redis

# Requests refused, by policy name, in this process: every refusal is made a problem by
# too_many_requests, and none is counted where a request is let through (kurz.metrics).
REFUSED: Counter[str] = Counter()

# Where an API check leaves its decision, for RateLimitHeaders to put on the response.
SCOPE_KEY = "kurz.ratelimit"


class ServiceLimits:
    """The service's policies, checked against one limiter."""

    def __init__(self, settings: Settings, limiter: Limiter):
        self.limiter = limiter
        # The in-process limiter never waits, so the redirect path may call it directly.
        self._check_now = limiter.check_now if isinstance(limiter, MemoryLimiter) else None
        self.in_process = self._check_now is not None
        self.api: Policy | None = settings.policy("api")
        self.redirect: Policy | None = settings.policy("redirect")
        self.auth_fail: Policy | None = settings.policy("auth_fail")
        # Failed sign-ins, per client IP and per account (kurz.accounts).
        self.signin_ip: Policy | None = settings.policy("signin_ip")
        self.signin_account: Policy | None = settings.policy("signin_account")
        # Wrong passwords for a password link, per link and client IP (kurz.links.visit).
        self.link_password: Policy | None = settings.policy("link_password")
        self._trusted = settings.trusted_proxies

    @classmethod
    def of(cls, settings: Settings, clock: Clock, redis: Redis | None = None) -> ServiceLimits:
        """In this process; or in `redis` (whose owner closes it), falling back to this
        process while it does not answer (ADR 0003)."""
        memory = MemoryLimiter(clock, max_keys=settings.ratelimit_max_keys)
        if redis is None:
            return cls(settings, memory)
        return cls(settings, FallbackLimiter(RedisLimiter(redis), memory))

    async def check(
        self, policy: Policy | None, key: str, scope: MutableMapping[str, Any] | None = None
    ) -> Decision | None:
        """Check `policy` for `key`; the decision is left in `scope`, if given, for
        RateLimitHeaders to put its fields on the response."""
        if policy is None:
            return None
        decision = await self.limiter.check(policy, key)
        if scope is not None:
            scope[SCOPE_KEY] = decision
        return decision

    async def peek(self, policy: Policy | None, key: str) -> Decision | None:
        """What `check` would decide for `key`, taking nothing: for a limit that only
        failures spend, asked before the attempt (kurz.accounts.sessions)."""
        if policy is None:
            return None
        return await self.limiter.peek(policy, key)

    def redirect_now(self, ip: str) -> Decision | None:
        """The redirect policy for `ip` without a coroutine: the in-process limiter only
        (`in_process`), which never waits, so the fast path may call it directly."""
        policy = self.redirect
        if policy is None:
            return None
        assert self._check_now is not None
        return self._check_now(policy, ip)

    def client_ip(self, scope: Mapping[str, Any]) -> str:
        """The peer address, or the client a trusted proxy says it forwarded for."""
        client = scope.get("client")
        peer: str = client[0] if client else "unknown"
        if not self._trusted or not within(peer, self._trusted):
            return peer
        forwarded = [
            value.decode("latin-1") for name, value in scope["headers"]
            if name == b"x-forwarded-for"
        ]  # fmt: skip
        hops = [hop.strip() for value in forwarded for hop in value.split(",")]
        # Walk back from the nearest hop: the first one not ours is the client. Hops
        # further left were written by the client itself and prove nothing.
        for hop in reversed(hops):
            if not within(hop, self._trusted):
                return hop if _is_ip(hop) else peer
        return hops[0] if hops and _is_ip(hops[0]) else peer


def _is_ip(text: str) -> bool:
    try:
        ip_address(text)
    except ValueError:
        return False
    return True


def within(text: str, networks: tuple[IPv4Network | IPv6Network, ...]) -> bool:
    """Whether `text` is an address in one of `networks` (kurz.requestid asks it too)."""
    try:
        address = ip_address(text)
    except ValueError:
        return False
    return any(address in network for network in networks)


def too_many_requests(decision: Decision) -> Problem:
    policy = decision.policy
    REFUSED[policy.name] += 1
    seconds = retry_after(decision)
    return Problem(
        429,
        f"rate-limit/{policy.name}",
        "Too Many Requests",
        f"The '{policy.name}' rate limit ({policy.limit} per {policy.window} s, "
        f"bursts of {policy.burst}) is used up; retry in {seconds} s.",
        headers={"Retry-After": seconds},
        extensions={"violated-policies": [policy.name]},
    )
