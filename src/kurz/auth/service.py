"""Who is calling: the API-key check every REST route and gRPC method runs."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

from kurz.auth import queries
from kurz.auth.models import Principal
from kurz.cache import LRUCache
from kurz.db import Database
from kurz.errors import Problem
from kurz.limits import ServiceLimits, too_many_requests


def unauthorized(detail: str) -> Problem:
    return Problem(
        401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"}
    )


def proxy_key_required(named: Sequence[str]) -> Problem:
    """The answer to a key that is not a proxy key naming whom a visit is for."""
    fields = ", ".join(named)
    return Problem(
        403,
        "proxy-key-required",
        "Proxy Key Required",
        f"Only a proxy key (`kurz keys create --proxy`) may name the visitor ({fields}); "
        "this key is not one. Without those fields, the call is the caller's own visit.",
    )


class Access:
    """Checks API keys: the key behind a secret, the call against its API limit, and a
    failed key against its client's address."""

    def __init__(
        self,
        *,
        db: Database,
        limits: ServiceLimits,
        principals: LRUCache[str, Principal] | None = None,
    ) -> None:
        self.db = db
        self.limits = limits
        # Keys checked lately, by secret hash (KURZ_AUTH_CACHE_TTL); None: none kept.
        self.principals = principals

    async def _principal(self, secret: str) -> Principal | None:
        """The live key behind `secret`, from the database or, checked lately, memory.

        A lookup is a database round trip (on SQLite, a hop to its thread); keeping
        the answer for a few seconds makes a revocation take that long to reach this
        process (docs/grpc.md).
        """
        cache = self.principals
        if cache is None:
            async with self.db.read() as conn:
                return await queries.authenticate(conn=conn, secret=secret)
        digest = queries.hash_secret(secret)
        principal = cache.get(digest)
        if principal is None:
            async with self.db.read() as conn:
                principal = await queries.authenticate(conn=conn, secret=secret)
            if principal is not None:
                cache.put(digest, principal)
        return principal

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
        principal = await self._principal(secret)
        limits = self.limits
        if principal is None:
            # Wrong keys count per client IP, so guessing is throttled before any works.
            failed = await limits.check(limits.auth_fail, client_ip(), scope)
            if failed is not None and not failed.allowed:
                raise too_many_requests(failed)
            raise unauthorized("The API key is unknown or revoked.")
        if not counted:
            return principal
        decision = await limits.check(limits.api, str(principal.key_id), scope)
        if decision is not None and not decision.allowed:
            raise too_many_requests(decision)
        return principal
