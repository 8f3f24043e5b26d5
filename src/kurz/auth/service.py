"""Who is calling: the check every REST route and gRPC method runs."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

from kurz.auth import queries
from kurz.auth.models import Principal, Scope
from kurz.auth.queries import KeyCheck
from kurz.cache import LRUCache
from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, Database
from kurz.errors import Problem
from kurz.limits import ServiceLimits, too_many_requests
from kurz.types import Clock

_REFUSED = {
    "unknown": "The API key is unknown or revoked.",
    "expired": "The API key has expired.",
    "disabled": "The API key's user is disabled.",
}


def unauthorized(detail: str) -> Problem:
    return Problem(
        401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"}
    )


def insufficient_scope(scope: Scope) -> Problem:
    return Problem(
        403,
        "insufficient-scope",
        "Insufficient Scope",
        f"This call needs the `{scope}` scope, which the key (or its user's role) lacks.",
        extensions={"required_scope": scope},
    )


def require(principal: Principal, scope: Scope) -> Principal:
    """`principal`, if it has `scope`; else the 403 that says which scope is missing."""
    if scope not in principal.scopes:
        raise insufficient_scope(scope)
    return principal


def proxy_key_required(named: Sequence[str]) -> Problem:
    """The answer to a key that is not a proxy key naming whom a visit is for."""
    fields = ", ".join(named)
    return Problem(
        403,
        "proxy-key-required",
        "Proxy Key Required",
        f"Only a key with the `proxy` scope (`kurz keys create --proxy`) may name the "
        f"visitor ({fields}); this key "
        "has not. Without those fields, the call is the caller's own visit.",
    )


class Access:
    """Checks callers: the key behind a secret, the call against its API limit, and a
    failed key against its client's address."""

    def __init__(
        self,
        *,
        db: Database,
        limits: ServiceLimits,
        clock: Clock,
        principals: LRUCache[str, KeyCheck] | None = None,
    ) -> None:
        self.db = db
        self.limits = limits
        self.clock = clock
        # Keys checked lately, by secret hash (KURZ_AUTH_CACHE_TTL); None: none kept.
        self.principals = principals
        # When this process last wrote each key's last-used time (clock seconds).
        self._touched: LRUCache[int, float] = LRUCache(10_000)

    async def _check(self, secret: str) -> KeyCheck:
        """The live key behind `secret`, from the database or, checked lately, memory.

        A lookup is a database round trip (on SQLite, a hop to its thread); keeping
        the answer for a few seconds makes a revocation, or disabling a user, take
        that long to reach this process (docs/grpc.md).
        """
        cache = self.principals
        now = utcnow(self.clock)
        if cache is None:
            async with self.db.read() as conn:
                return await queries.authenticate(conn=conn, secret=secret, now=now)
        digest = queries.hash_secret(secret)
        check = cache.get(digest)
        if check is None:
            async with self.db.read() as conn:
                check = await queries.authenticate(conn=conn, secret=secret, now=now)
            if check.principal is not None:
                cache.put(digest, check)
        elif check.expires_at is not None and check.expires_at <= now:
            return KeyCheck(None, "expired")
        return check

    async def _touch(self, key_id: int) -> None:
        """Write the key's last-used time, at most once a minute from this process
        (and, by the UPDATE's own condition, from all of them)."""
        now = self.clock()
        last = self._touched.get(key_id)
        if last is not None and now - last < queries.LAST_USED_EVERY.total_seconds():
            return
        self._touched.put(key_id, now)
        async with self.db.write(READ_COMMITTED) as conn:
            await queries.touch(conn=conn, key_id=key_id, now=utcnow(self.clock))

    async def authorize(
        self,
        secret: str | None,
        *,
        client_ip: Callable[[], str],
        scope: MutableMapping[str, Any],
        counted: bool = True,
    ) -> Principal:
        """The caller's key; counts the call against its API limit, or a failure
        against its IP.

        `client_ip` is asked for only when the key fails. `scope` receives the
        rate-limit decision, for the answer's RateLimit fields. `counted=False` leaves
        the API limit to the caller, which applies another policy.
        """
        if secret is None:
            raise unauthorized("Send an API key as `Authorization: Bearer <key>`.")
        check = await self._check(secret)
        principal = check.principal
        limits = self.limits
        if principal is None:
            # Wrong keys count per client IP, so guessing is throttled before any works.
            failed = await limits.check(limits.auth_fail, client_ip(), scope)
            if failed is not None and not failed.allowed:
                raise too_many_requests(failed)
            raise unauthorized(_REFUSED[check.refused or "unknown"])
        assert principal.key_id is not None
        await self._touch(principal.key_id)
        if not counted:
            return principal
        decision = await limits.check(limits.api, principal.subject, scope)
        if decision is not None and not decision.allowed:
            raise too_many_requests(decision)
        return principal
