"""The redirect pipeline: one object decides a visit, and every way in asks it.

limit -> lookup through the cache tiers -> the link's verdict (kurz.links.rules) ->
the visit cap -> where to (kurz.links.routes: the first targeting rule that matches,
else the link's url) -> the click. The outcome is a value: HTTP (kurz.links.redirect) and
gRPC (ResolveLink) only render it. The fast path answers an L1 hit without awaiting
anything, from `cached`, which asks the same verdict (docs/architecture.md).
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
from kurz.links.rules import Visit, missing, used_up, verdict
from kurz.links.target import Target
from kurz.links.traits import Places, Traits
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

    An HTTP visit passes its ASGI scope, whose headers the click and the targeting
    rules read; a gRPC one names the visitor's agent, referer, languages and query.
    """

    ip: str
    scope: Mapping[str, Any] | None = None
    user_agent: str | None = None
    referer: str | None = None
    accept_language: str | None = None
    query_string: bytes = b""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a visit ends: a redirect to `target`, or the `refusal` (404, 410, 429, 503)."""

    target: Target | None
    refusal: Problem | None = None
    # The redirect policy's decision, for the RateLimit fields; None: not limited.
    limit: Decision | None = None
    # Which of the target's URLs the visit goes to (Target.urls; 0: its own url).
    at: int = 0


class Visits:
    """Decides visits: limit, lookup, verdict, visit cap, click."""

    __slots__ = ("clicks", "clock", "db", "l1", "limits", "needs_ip", "places", "targets")

    def __init__(
        self,
        *,
        targets: Targets,
        db: Database,
        clock: Clock,
        limits: ServiceLimits,
        clicks: Clicks | None,
        places: Places | None = None,
    ) -> None:
        self.targets = targets
        self.l1 = targets.l1
        self.db = db
        self.clock = clock
        self.limits = limits
        self.clicks = clicks
        # Whether a visit needs its client's address at all (limited, or counted).
        self.needs_ip = limits.redirect is not None or clicks is not None
        # Where visitors are, for targeting rules by country or city.
        self.places = places or Places(client_ip=limits.client_ip)

    def visitor(self, scope: Mapping[str, Any]) -> Visitor:
        """The visitor an HTTP request is; its address worked out only if a limit or a
        click needs it, and only here."""
        return Visitor(self.limits.client_ip(scope) if self.needs_ip else "", scope)

    def cached(self, code: str) -> Target | None:
        """The target in L1 if a visit to it may be answered without awaiting: it
        passes the verdict now and has no visit cap (the fast path)."""
        target = self.l1.get(code)
        if target is None or target.plain:
            return target
        if target.capped or (target.rules and verdict(target, Visit(self.clock())) is not None):
            return None
        return target

    def where(self, target: Target, scope: Mapping[str, Any], ip: str) -> int:
        """Which of a routed target's URLs an HTTP visit goes to (the fast path's
        `where_to`, without a Visitor)."""
        return self.where_to(target, Traits(self.places, at=self.clock(), ip=ip, scope=scope))

    def where_to(self, target: Target, traits: Traits) -> int:
        """Which of `target`'s URLs a visit goes to: the first targeting rule's that
        matches, else the link's own (0)."""
        routes = target.routes
        if routes is not None:
            return routes.pick(traits)
        return 0

    def traits(self, visitor: Visitor) -> Traits:
        """What targeting rules may know of `visitor`'s visit."""
        if visitor.scope is not None:
            return Traits(self.places, at=self.clock(), ip=visitor.ip, scope=visitor.scope)
        return Traits(
            self.places,
            at=self.clock(),
            ip=visitor.ip,
            user_agent=visitor.user_agent,
            accept_language=visitor.accept_language,
            query_string=visitor.query_string,
        )

    async def limit(self, ip: str) -> Decision | None:
        """The redirect policy, checked for `ip`; None when there is none."""
        limits = self.limits
        if limits.redirect is None:
            return None
        return await limits.check(limits.redirect, ip)

    async def decide(self, code: str, visitor: Visitor, *, peek: bool, counted: bool) -> Outcome:
        """The whole pipeline for a visit of `code`; `peek` (a HEAD) uses no visit up and
        counts no click. `counted`: the fast path has read L1 for this request."""
        decision = await self.limit(visitor.ip)
        if decision is not None and not decision.allowed:
            return Outcome(None, too_many_requests(decision), decision)
        try:
            target = await self._target(code, peek=peek, counted=counted)
        except Problem as problem:
            # The database does not answer (503), or a rule refused.
            return Outcome(None, problem, decision)
        at = self.where_to(target, self.traits(visitor)) if target.routed else 0
        if not peek:
            self.click(target, visitor)
        return Outcome(target, None, decision, at)

    async def _target(self, code: str, *, peek: bool, counted: bool) -> Target:
        targets = self.targets
        target = await targets.find(code, counted=counted) if is_code(code) else None
        if target is None:
            raise missing()
        if target.rules:
            refusal = verdict(target, Visit(self.clock()))
            if refusal is not None:
                raise refusal
        if target.capped and not await self._take_visit(target, peek=peek):
            # Deleted since it was cached, or out of visits: ask the database which.
            targets.forget(code)
            if await targets.find(code, counted=True) is None:
                raise missing()
            raise used_up()
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
