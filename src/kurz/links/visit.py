"""The redirect pipeline: one object decides a visit, and every way in asks it.

limit -> the domain (by Host) and the cache key -> lookup through the cache tiers ->
the link's verdict (kurz.links.rules) -> the visit cap -> the click. A refusal of the
lookup, the window or the cap becomes a redirect where the link has a fallback or
its domain a redirect for it (docs/domains.md). The outcome is a value: HTTP
(kurz.links.redirect) and gRPC (ResolveLink) only render it. The fast path answers an
L1 hit without awaiting anything, from `cached`, which asks the same verdict
(docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from kurz.db import READ_COMMITTED, Database
from kurz.errors import Problem
from kurz.limits import ServiceLimits, too_many_requests
from kurz.links import queries
from kurz.links.cache import Targets
from kurz.links.codes import is_code
from kurz.links.domains import Domain, Domains
from kurz.links.rules import Visit, missing, used_up, verdict
from kurz.links.target import Target
from kurz.ratelimit import Decision
from kurz.types import Clock


class Clicks(Protocol):
    """Where visits are counted (kurz.analytics' ClickRecorder); links never import it."""

    def click(self, link_id: int, scope: Any, client_ip: str) -> bool: ...

    def visit(
        self, link_id: int, *, client_ip: str, user_agent: str | None, referer: str | None
    ) -> bool: ...


@dataclass(frozen=True, slots=True)
class Visitor:
    """Whom a visit is for: whose redirect limit it uses, whose click it counts.

    An HTTP visit passes its ASGI scope, whose headers the click reads; a gRPC one
    names the visitor's agent and referer.
    """

    ip: str
    scope: Mapping[str, Any] | None = None
    user_agent: str | None = None
    referer: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a visit ends: a redirect to `target`, the `refusal` (404, 410, 429, 503), or
    a redirect to `location` in its stead (a link's fallback, a domain's redirect)."""

    target: Target | None
    refusal: Problem | None = None
    # The redirect policy's decision, for the RateLimit fields; None: not limited.
    limit: Decision | None = None
    location: str | None = None


# The refusals a link's fallback URL (its `fallbacks` key) may stand in for, and those
# its domain's redirect may (kurz.links.domains.Redirects' field).
_FALLBACKS = {
    "link-not-active": "not_yet",
    "link-expired": "expired",
    "link-visits-exhausted": "used_up",
}
_DOMAIN_REDIRECTS = {
    "link-not-found": "not_found",
    "link-expired": "expired",
    "link-visits-exhausted": "used_up",
}


class _Refused(Exception):
    """A rule or the visit cap refused a visit of `target`."""

    def __init__(self, problem: Problem, target: Target) -> None:
        super().__init__(problem.detail)
        self.problem = problem
        self.target = target


def _instead(
    problem: Problem, target: Target | None, domain: Domain, decision: Decision | None
) -> Outcome:
    """A refusal, or the redirect that stands in for it: the link's fallback for it,
    else its domain's redirect (the instance-wide one filled in)."""
    location = None
    if target is not None:
        location = target.fallback.get(_FALLBACKS.get(problem.slug, ""))
    if location is None and problem.slug in _DOMAIN_REDIRECTS:
        location = getattr(domain.redirects, _DOMAIN_REDIRECTS[problem.slug])
    if location is None:
        return Outcome(None, problem, decision)
    return Outcome(None, None, decision, location)


class Visits:
    """Decides visits: limit, lookup, verdict, visit cap, click."""

    __slots__ = ("clicks", "clock", "db", "domains", "l1", "limits", "needs_ip", "targets")

    def __init__(
        self,
        *,
        targets: Targets,
        db: Database,
        clock: Clock,
        limits: ServiceLimits,
        clicks: Clicks | None,
        domains: Domains,
    ) -> None:
        self.targets = targets
        self.domains = domains
        self.l1 = targets.l1
        self.db = db
        self.clock = clock
        self.limits = limits
        self.clicks = clicks
        # Whether a visit needs its client's address at all (limited, or counted).
        self.needs_ip = limits.redirect is not None or clicks is not None

    def visitor(self, scope: Mapping[str, Any]) -> Visitor:
        """The visitor an HTTP request is; its address worked out only if a limit or a
        click needs it, and only here."""
        return Visitor(self.limits.client_ip(scope) if self.needs_ip else "", scope)

    def cached(self, code: str, headers: list[tuple[bytes, bytes]]) -> Target | None:
        """The target in L1 if a visit to it may be answered without awaiting: it
        passes the verdict now and has no visit cap (the fast path). `headers`: the
        request's, whose Host picks the domain."""
        domains = self.domains
        if domains.one:
            target = self.l1.get(code)
        else:
            domain = domains.of(headers)
            if domain is None:
                return None
            target = self.l1.get(domain.prefix + code)
            # A path of the default domain may spell another's key ("/3/abc").
            if target is not None and target.domain_id != domain.id:
                return None
        if target is None or target.plain:
            return target
        if target.capped or verdict(target, Visit(self.clock())) is not None:
            return None
        return target

    async def limit(self, ip: str) -> Decision | None:
        """The redirect policy, checked for `ip`; None when there is none."""
        limits = self.limits
        if limits.redirect is None:
            return None
        return await limits.check(limits.redirect, ip)

    def domain(self, scope: Mapping[str, Any]) -> Domain | None:
        """The domain an HTTP request's Host names; None: refused (KURZ_UNKNOWN_HOST)."""
        return self.domains.of(scope["headers"])

    def root(self, scope: Mapping[str, Any]) -> Outcome | None:
        """A visit of `/`: its domain's root redirect, if it has one."""
        domain = self.domains.of(scope["headers"])
        if domain is None or domain.redirects.root is None:
            return None
        return Outcome(None, location=domain.redirects.root)

    async def decide(
        self,
        code: str,
        visitor: Visitor,
        *,
        domain: Domain | None,
        peek: bool,
        counted: bool,
    ) -> Outcome:
        """The whole pipeline for a visit of `code` on `domain` (None: a Host kurz
        refuses); `peek` (a HEAD) uses no visit up and counts no click. `counted`: the
        fast path has read L1 for this request."""
        decision = await self.limit(visitor.ip)
        if decision is not None and not decision.allowed:
            return Outcome(None, too_many_requests(decision), decision)
        if domain is None:
            return Outcome(None, missing(), decision)
        try:
            target = await self._target(code, domain, peek=peek, counted=counted)
        except _Refused as refused:
            return _instead(refused.problem, refused.target, domain, decision)
        except Problem as problem:
            # The database does not answer (503), or no such link.
            return _instead(problem, None, domain, decision)
        if not peek:
            self.click(target, visitor)
        return Outcome(target, None, decision)

    async def _target(self, code: str, domain: Domain, *, peek: bool, counted: bool) -> Target:
        targets = self.targets
        key = domain.prefix + code
        target = await targets.find(key, counted=counted) if is_code(code) else None
        if target is None:
            raise missing()
        if target.rules:
            refusal = verdict(target, Visit(self.clock()))
            if refusal is not None:
                raise _Refused(refusal, target)
        if target.capped and not await self._take_visit(target, peek=peek):
            # Deleted since it was cached, or out of visits: ask the database which.
            targets.forget(key)
            if await targets.find(key, counted=True) is None:
                raise missing()
            raise _Refused(used_up(), target)
        return target

    async def _take_visit(self, target: Target, *, peek: bool) -> bool:
        """Whether a capped link has a visit left; uses one up unless `peek`."""
        if peek:
            async with self.db.read() as conn:
                return await queries.has_visits_left(conn=conn, link_id=target.link_id)
        async with self.db.write(READ_COMMITTED) as conn:
            return await queries.count_visit(conn=conn, link_id=target.link_id)

    def click(self, target: Target, visitor: Visitor) -> None:
        """Count the visit (queued, never awaited; ADR 0009)."""
        clicks = self.clicks
        if clicks is None:
            return
        if visitor.scope is not None:
            clicks.click(target.link_id, visitor.scope, visitor.ip)
        else:
            clicks.visit(
                target.link_id,
                client_ip=visitor.ip,
                user_agent=visitor.user_agent,
                referer=visitor.referer,
            )
