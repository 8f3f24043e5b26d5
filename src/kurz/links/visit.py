"""The redirect pipeline: one object decides a visit, and every way in asks it.

limit -> the domain (by Host) and the cache key -> lookup through the cache tiers ->
the link's verdict (kurz.links.rules) -> link-preview bots, then the password
(kurz.links.gates) -> the visit cap -> where to (the first targeting rule that
matches, kurz.links.routes; else a variant, kurz.links.variants; else the link's
url) -> the click. A refusal of the lookup, the window or the cap becomes a redirect
where the link has a fallback or its domain a redirect for it (docs/domains.md).
The outcome is a value: HTTP (kurz.links.redirect) and gRPC (ResolveLink) only
render it. The fast path answers an L1 hit without awaiting anything, from
`cached`, which asks the same verdict and the same `where` (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from random import Random
from typing import Any, Protocol

from kurz.accounts.passwords import Passwords
from kurz.db import READ_COMMITTED, Database
from kurz.errors import Problem
from kurz.limits import ServiceLimits, too_many_requests
from kurz.links import queries
from kurz.links.cache import Targets
from kurz.links.codes import is_code
from kurz.links.domains import Domain, Domains
from kurz.links.gates import password_required, previews, wrong_password
from kurz.links.rules import Visit, missing, used_up, verdict
from kurz.links.target import Target
from kurz.links.traits import Places, Traits
from kurz.links.variants import Variant
from kurz.ratelimit import Decision
from kurz.types import Clock


class Clicks(Protocol):
    """Where visits are counted (kurz.analytics' ClickRecorder); links never import it.

    `variant`: the URL of the link's variant the visit was sent to, if it has variants.
    """

    def click(
        self, link_id: int, scope: Any, client_ip: str, variant: str | None = None
    ) -> bool: ...

    def visit(
        self,
        link_id: int,
        *,
        client_ip: str,
        user_agent: str | None,
        referer: str | None,
        variant: str | None = None,
    ) -> bool: ...


class Visitors(Protocol):
    """Who a visitor is for a day: the analytics visitor hash (kurz.analytics'
    DailySalt), which sticky variants are chosen by; links never import it."""

    def visitor(self, ip: str, user_agent: str | None) -> str: ...


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

    def agent(self) -> str | None:
        """The visitor's User-Agent, from the scope's headers or as named."""
        if self.scope is None:
            return self.user_agent
        for name, value in self.scope["headers"]:
            if name == b"user-agent":
                return str(value.decode("latin-1"))
        return None


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a visit ends: a redirect to `target`, the `refusal` (401, 404, 410, 429,
    503), a redirect to `location` in its stead (a link's fallback, a domain's
    redirect), or for a link-preview bot the `preview` page of a link (never its
    target)."""

    target: Target | None
    refusal: Problem | None = None
    # The redirect policy's decision, for the RateLimit fields; None: not limited.
    limit: Decision | None = None
    # Which of the target's URLs the visit goes to (Target.urls: 0 its own url, then
    # the rules', then the variants').
    at: int = 0
    # A link-preview bot's visit: the page it is shown instead (no target).
    preview: Target | None = None
    # Where a refused visit goes instead: a link's fallback, a domain's redirect.
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
    else its domain's redirect (the instance-wide one filled in). Never the target: a
    password link's stays unknown to whoever it refuses."""
    location = None
    if target is not None:
        location = target.fallback.get(_FALLBACKS.get(problem.slug, ""))
    if location is None and problem.slug in _DOMAIN_REDIRECTS:
        location = getattr(domain.redirects, _DOMAIN_REDIRECTS[problem.slug])
    if location is None:
        return Outcome(None, problem, decision)
    return Outcome(None, None, decision, location=location)


# What a visit came to, as kurz.metrics labels it: "refused" is a link's window, cap or
# password refusing it; a link's fallback (kurz.links.fallbacks) may redirect it still.
OUTCOMES = ("redirected", "limited", "missing", "refused", "unavailable", "preview")
_REFUSALS = {404: "missing", 410: "missing", 503: "unavailable"}


class Visits:
    """Decides visits: limit, lookup, verdict, visit cap, where to, click.

    `random` draws in [0, 1) for random variants: a fast PRNG, not a secret (a visitor
    who could predict their variant gains nothing); tests pass a seeded one.
    `visitors` names the visitor for sticky variants; `places` locates visitors for
    targeting rules by country or city.
    """

    __slots__ = (
        "clicks",
        "clock",
        "db",
        "domains",
        "fast",
        "fast_limited",
        "l1",
        "limits",
        "needs_ip",
        "outcomes",
        "passwords",
        "places",
        "random",
        "targets",
        "visitors",
    )

    def __init__(
        self,
        *,
        targets: Targets,
        db: Database,
        clock: Clock,
        limits: ServiceLimits,
        clicks: Clicks | None,
        visitors: Visitors,
        random: Callable[[], float] | None = None,
        passwords: Passwords,
        domains: Domains,
        places: Places | None = None,
    ) -> None:
        self.targets = targets
        self.domains = domains
        self.l1 = targets.l1
        self.db = db
        self.clock = clock
        self.limits = limits
        self.clicks = clicks
        self.visitors = visitors
        self.random = random or Random().random
        self.passwords = passwords
        # Whether a visit needs its client's address at all (limited, or counted).
        self.needs_ip = limits.redirect is not None or clicks is not None
        # Where visitors are, for targeting rules by country or city.
        self.places = places or Places(client_ip=limits.client_ip)
        # Plain ints for kurz.metrics: redirects the app's fast path answered from L1
        # and those its limit refused, and every other visit by its outcome (`decide`).
        self.fast = 0
        self.fast_limited = 0
        self.outcomes: dict[str, int] = dict.fromkeys(OUTCOMES, 0)

    def visitor(self, scope: Mapping[str, Any]) -> Visitor:
        """The visitor an HTTP request is; its address worked out only if a limit or a
        click needs it, and only here."""
        return Visitor(self.limits.client_ip(scope) if self.needs_ip else "", scope)

    def cached(self, code: str, headers: list[tuple[bytes, bytes]]) -> Target | None:
        """The target in L1 if a visit to it may be answered without awaiting: it
        passes the verdict now and is not screened: no visit cap, password or preview
        (the fast path). `headers`: the request's, whose Host picks the domain."""
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
        if target.screened or (target.rules and verdict(target, Visit(self.clock())) is not None):
            return None
        return target

    def where(self, target: Target, scope: Mapping[str, Any], ip: str) -> int:
        """Which of a routed target's URLs an HTTP visit goes to (the fast path's
        `where_to`, without a Visitor)."""
        routes = target.routes
        if routes is not None:
            at = routes.pick(Traits(self.places, at=self.clock(), ip=ip, scope=scope))
            if at:
                return at
        return 0 if target.variants is None else self.variant(target, ip, scope).at

    def where_to(self, target: Target, visitor: Visitor) -> int:
        """Which of `target`'s URLs (Target.urls) a visit goes to: the first targeting
        rule's that matches, else a variant, else the link's own (0)."""
        if visitor.scope is not None:
            return self.where(target, visitor.scope, visitor.ip)
        routes = target.routes
        if routes is not None:
            at = routes.pick(self.traits(visitor))
            if at:
                return at
        if target.variants is None:
            return 0
        return self.variant(target, visitor.ip, user_agent=visitor.user_agent).at

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
        password: str | None = None,
    ) -> Outcome:
        """The whole pipeline for a visit of `code` on `domain` (None: a Host kurz
        refuses); `peek` (a HEAD) uses no visit up and counts no click. `counted`: the
        fast path has read L1 for this request. `password`: the one the visitor gave,
        if any (a password link needs it)."""
        outcomes = self.outcomes
        decision = await self.limit(visitor.ip)
        if decision is not None and not decision.allowed:
            outcomes["limited"] += 1
            return Outcome(None, too_many_requests(decision), decision)
        if domain is None:
            outcomes["missing"] += 1
            return Outcome(None, missing(), decision)
        try:
            target, preview = await self._target(
                code, domain, visitor, password, peek=peek, counted=counted
            )
        except _Refused as refused:
            outcomes["refused"] += 1
            return _instead(refused.problem, refused.target, domain, decision)
        except Problem as problem:
            # The database does not answer (503), no such link, or the password refused.
            outcomes[_REFUSALS.get(problem.status, "refused")] += 1
            return _instead(problem, None, domain, decision)
        if preview:
            # A preview is no visit: it takes nothing from a cap and counts no click.
            outcomes["preview"] += 1
            return Outcome(None, None, decision, preview=target)
        outcomes["redirected"] += 1
        at = self.where_to(target, visitor) if target.routed else 0
        if not peek:
            self.click(target, visitor, target.variant_at(at))
        return Outcome(target, None, decision, at)

    def variant(
        self,
        target: Target,
        ip: str,
        scope: Mapping[str, Any] | None = None,
        user_agent: str | None = None,
    ) -> Variant:
        """The variant of `target` (which has variants) a visit goes to: drawn at random,
        or the visitor's for the day (by address and user agent, from `scope`'s headers
        for an HTTP visit)."""
        variants = target.variants
        assert variants is not None
        if not variants.sticky:
            return variants.pick(self.random())
        if scope is not None:
            if not self.needs_ip:
                ip = self.limits.client_ip(scope)
            for name, value in scope["headers"]:
                if name == b"user-agent":
                    user_agent = value.decode("latin-1")
                    break
        return variants.for_visitor(self.visitors.visitor(ip, user_agent), target.link_id)

    async def _target(
        self,
        code: str,
        domain: Domain,
        visitor: Visitor,
        password: str | None,
        *,
        peek: bool,
        counted: bool,
    ) -> tuple[Target, bool]:
        """The link's target once every step lets the visitor by, and whether it is a
        link-preview bot's visit instead (which neither a password nor a cap is asked).
        A refusal of the window or the cap is `_Refused`, which knows the target's
        fallbacks; the password's and the lookup's are plain problems."""
        targets = self.targets
        # The cache key: the bare code on the default domain, else "<domain id>/<code>".
        key = domain.prefix + code
        target = await targets.find(key, counted=counted) if is_code(code) else None
        if target is None:
            if password is not None:
                # As much work as a wrong password: no answer tells a missing link apart.
                await self._unlock(None, key, visitor, password)
            raise missing()
        if target.rules:
            refusal = verdict(target, Visit(self.clock()))
            if refusal is not None:
                raise _Refused(refusal, target)
        if not target.screened:
            return target, False
        if previews(target, visitor.agent()):
            return target, True
        if target.protected:
            if password is None:
                raise password_required()
            await self._unlock(target, key, visitor, password)
        if target.capped and not await self._take_visit(target, peek=peek):
            # Deleted since it was cached, or out of visits: ask the database which.
            targets.forget(key)
            if await targets.find(key, counted=True) is None:
                raise missing()
            raise _Refused(used_up(), target)
        return target, False

    async def _unlock(
        self, target: Target | None, key: str, visitor: Visitor, password: str
    ) -> None:
        """Check `password` against the link's (no link: a dummy hash, as slowly), within
        the wrong-password limit per link (its cache key, which names its domain) and
        client address, which only failures spend."""
        limits = self.limits
        # `needs_ip` leaves it out when nothing else wants it; this limit does.
        ip = visitor.ip or (limits.client_ip(visitor.scope) if visitor.scope else "")
        limited = f"{key}|{ip}"
        blocked = await limits.peek(limits.link_password, limited)
        if blocked is not None and not blocked.allowed:
            raise too_many_requests(blocked)
        stored: str | None = None
        gone = target is None
        if target is not None:
            async with self.db.read() as conn:
                found = await queries.password_hash(conn=conn, link_id=target.link_id)
            gone = found is None
            stored = None if found is None else found[0]
            if not gone and stored is None:
                # Its password was cleared since it was cached: nothing to check.
                self.targets.forget(key)
                return
        if await self.passwords.averify_user(stored, password):
            return
        await limits.check(limits.link_password, limited)
        if gone:
            if target is not None:
                self.targets.forget(key)
            raise missing()
        raise wrong_password()

    async def _take_visit(self, target: Target, *, peek: bool) -> bool:
        """Whether a capped link has a visit left; uses one up unless `peek`."""
        if peek:
            async with self.db.read() as conn:
                return await queries.has_visits_left(conn=conn, link_id=target.link_id)
        async with self.db.write(READ_COMMITTED) as conn:
            return await queries.count_visit(conn=conn, link_id=target.link_id)

    def click(self, target: Target, visitor: Visitor, variant: str | None = None) -> None:
        """Count the visit (queued, never awaited; ADR 0009), with the URL of the
        variant it was sent to, if any."""
        clicks = self.clicks
        if clicks is None:
            return
        if visitor.scope is not None:
            clicks.click(target.link_id, visitor.scope, visitor.ip, variant)
        else:
            clicks.visit(
                target.link_id,
                client_ip=visitor.ip,
                user_agent=visitor.user_agent,
                referer=visitor.referer,
                variant=variant,
            )
