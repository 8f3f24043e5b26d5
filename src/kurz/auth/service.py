"""Who is calling: the API-key check every REST route and gRPC method runs."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from kurz.auth import queries
from kurz.auth.models import Principal
from kurz.errors import Problem
from kurz.limits import too_many_requests

if TYPE_CHECKING:
    from kurz.bootstrap import Parts


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


async def _principal(state: Parts, secret: str) -> Principal | None:
    """The live key behind `secret`, from the database or, checked lately, from memory.

    A lookup is a database round trip (on SQLite, a hop to its thread: most of what a
    cheap gRPC call cost, docs/benchmarks.md); keeping the answer for a few seconds
    makes a revocation take that long to reach this process (docs/grpc.md).
    """
    cache = state.principals
    if cache is None:
        async with state.db.read() as conn:
            return await queries.authenticate(conn=conn, secret=secret)
    digest = queries.hash_secret(secret)
    principal = cache.get(digest)
    if principal is None:
        async with state.db.read() as conn:
            principal = await queries.authenticate(conn=conn, secret=secret)
        if principal is not None:
            cache.put(digest, principal)
    return principal


async def authorize(
    state: Parts,
    secret: str | None,
    *,
    client_ip: Callable[[], str],
    scope: MutableMapping[str, Any],
    counted: bool = True,
) -> Principal:
    """The caller's key; counts the call against its API limit, or a failure against its IP.

    `client_ip` is asked for only when the key fails. `scope` receives the rate-limit
    decision, for the answer's RateLimit fields.
    `counted=False` leaves the API limit to the caller, which applies another policy.
    """
    if secret is None:
        raise unauthorized("Send an API key as `Authorization: Bearer <key>`.")
    principal = await _principal(state, secret)
    limits = state.limits
    if principal is None:
        # Wrong keys count per client IP, so guessing is throttled before any key works.
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
