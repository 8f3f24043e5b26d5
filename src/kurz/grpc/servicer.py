"""kurz.v1.LinkService: parse the message, call the use cases, render the reply.

Every method runs what the matching REST route runs (the API key check and its rate
limit, the operation, the idempotency store), so the two APIs answer alike; a
Problem becomes the status docs/grpc.md lists for it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote

import grpc
from google.protobuf import empty_pb2
from pydantic import BaseModel, ValidationError

from kurz.analytics.service import Stats
from kurz.auth.models import Principal, Scope
from kurz.auth.service import Access, proxy_key_required, require
from kurz.bootstrap import Parts
from kurz.errors import Problem, invalid, validation_problem
from kurz.grpc import convert
from kurz.grpc.errors import status_of
from kurz.grpc.kurz.v1 import links_pb2 as pb
from kurz.grpc.kurz.v1 import links_pb2_grpc as pb_grpc
from kurz.idempotency import REPLAYED, ReplayedProblem, key_for
from kurz.limits import SCOPE_KEY, too_many_requests
from kurz.links.batch import Batches, parsed
from kurz.links.models import MAX_BATCH, LinkCreate, LinkUpdate
from kurz.links.queries import Versions
from kurz.links.service import Links
from kurz.links.visit import Visitor, Visits
from kurz.ratelimit import with_fields

log = logging.getLogger("kurz.grpc")

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
Context = grpc.aio.ServicerContext[Any, Any]

IDEMPOTENCY_KEY = "idempotency-key"
DEFAULT_PAGE, MAX_PAGE = 20, 100
DEFAULT_TOP, MAX_TOP = 10, 100


@dataclass
class Call:
    """One RPC as the operations see it: its metadata, its peer, and its limit decision."""

    metadata: dict[str, list[str]]
    peer_ip: str
    # Receives the rate-limit decision, as an ASGI scope does on the REST side.
    scope: dict[str, Any] = field(default_factory=dict)
    replayed: bool = False

    @classmethod
    def of(cls, context: Context) -> Call:
        metadata: dict[str, list[str]] = {}
        for key, value in context.invocation_metadata() or ():
            if isinstance(value, str):
                metadata.setdefault(key.lower(), []).append(value)
        return cls(metadata, peer_ip(context.peer()))

    def first(self, key: str) -> str | None:
        values = self.metadata.get(key)
        return values[0] if values else None

    def secret(self) -> str | None:
        """The API key of `authorization: Bearer <key>`."""
        value = self.first("authorization")
        if value is None:
            return None
        scheme, _, secret = value.strip().partition(" ")
        return secret.strip() or None if scheme.lower() == "bearer" else None

    def trailers(self) -> list[tuple[str, str]]:
        """RateLimit fields and Idempotent-Replayed, as REST puts them in its headers."""
        pairs: list[tuple[str, str]] = []
        decision = self.scope.get(SCOPE_KEY)
        if decision is not None:
            pairs += [(k.decode(), v.decode("latin-1")) for k, v in with_fields((), decision)]
        if self.replayed:
            pairs.append((REPLAYED.lower(), "true"))
        return pairs


def peer_ip(peer: str) -> str:
    """The address in gRPC's peer string ("ipv4:10.0.0.1:5000", "ipv6:%5B::1%5D:5000")."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    if kind == "ipv6":
        return unquote(rest).rpartition(":")[0].strip("[]")
    return peer or "unknown"


# ResolveLinkRequest's fields that say whom a visit is for; only a proxy key may send them.
VISITOR_FIELDS = ("client_ip", "user_agent", "referer", "accept_language")


def named_visitor(request: pb.ResolveLinkRequest, call: Call) -> Visitor | None:
    """The visitor the request describes (without an address: at the peer's), if any."""
    if not any(getattr(request, field) for field in VISITOR_FIELDS):
        return None
    return Visitor(
        request.client_ip or call.peer_ip,
        user_agent=request.user_agent or None,
        referer=request.referer or None,
        accept_language=request.accept_language or None,
        query_string=request.query.encode(),
    )


def own(call: Call, request: pb.ResolveLinkRequest) -> Visitor:
    """The caller as its own visitor, as GET /{code} counts the HTTP client that sent it."""
    return Visitor(
        call.peer_ip,
        user_agent=call.first("user-agent"),
        accept_language=call.first("accept-language"),
        query_string=request.query.encode(),
    )


def validated(model: type[M], body: dict[str, Any]) -> M:
    """`body` as `model`, or the 422 REST answers for the same body."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        found = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise validation_problem(found) from None


def item_of(request: pb.CreateLinkRequest) -> LinkCreate | Problem:
    """One link of a batch, as CreateLink reads it: the link asked for, or its refusal."""
    try:
        return parsed(convert.create_body(request))
    except Problem as problem:
        return problem


class LinkServicer(pb_grpc.LinkServiceServicer):
    """The gRPC entrypoint to the links operations, for one app's state."""

    def __init__(
        self,
        *,
        access: Access,
        links: Links,
        batches: Batches,
        visits: Visits,
        stats: Stats,
        idempotency_required: bool = False,
    ) -> None:
        self.access = access
        self.links = links
        self.batches = batches
        self.visits = visits
        self.stats = stats
        self.idempotency_required = idempotency_required

    @classmethod
    def of(cls, parts: Parts) -> LinkServicer:
        return cls(
            access=parts.access,
            links=parts.links,
            batches=parts.batches,
            visits=parts.visits,
            stats=parts.stats,
            idempotency_required=parts.settings.idempotency_required,
        )

    async def _answer(self, context: Context, work: Callable[[Call], Awaitable[T]]) -> T:
        call = Call.of(context)
        try:
            result = await work(call)
            context.set_trailing_metadata(tuple(call.trailers()))
            return result
        except Problem as problem:
            # A refusal answered from the idempotency record says so, as a result does.
            call.replayed = call.replayed or isinstance(problem, ReplayedProblem)
            error = status_of(problem)
            context.set_trailing_metadata((*call.trailers(), *error.trailers()))
            await context.abort(error.code, error.message)
            raise  # abort() has raised already; this line only reassures the checker
        except grpc.aio.AbortError:
            raise
        except Exception:
            # A bug, as a 500 is on the REST side: logged, and its text kept to the log.
            log.exception("unexpected error in a gRPC call")
            await context.abort(grpc.StatusCode.INTERNAL, "An unexpected error occurred.")
            raise

    async def _caller(self, call: Call, needs: Scope | None, *, counted: bool = True) -> Principal:
        """The caller, if it may call a method that `needs` a scope (None: any key)."""
        principal = await self.access.authorize(
            call.secret(),
            client_ip=lambda: call.peer_ip,
            scope=call.scope,
            counted=counted,
        )
        return principal if needs is None else require(principal, needs)

    async def CreateLink(self, request: pb.CreateLinkRequest, context: Context) -> pb.Link:
        async def work(call: Call) -> pb.Link:
            principal = await self._caller(call, "links:write")
            body = convert.create_body(request)
            key = key_for(
                call.metadata.get(IDEMPOTENCY_KEY, []),
                required=self.idempotency_required,
            )
            link_in = validated(LinkCreate, body)
            done = await self.links.create(principal=principal, link_in=link_in, key=key)
            call.replayed = done.replayed
            return convert.link(done.value)

        return await self._answer(context, work)

    async def BatchCreateLinks(
        self, request: pb.BatchCreateLinksRequest, context: Context
    ) -> pb.BatchCreateLinksResponse:
        async def work(call: Call) -> pb.BatchCreateLinksResponse:
            principal = await self._caller(call, "links:write")
            count = len(request.requests)
            if not 1 <= count <= MAX_BATCH:
                raise invalid("requests", f"must hold 1 to {MAX_BATCH:,} links, not {count:,}")
            key = key_for(
                call.metadata.get(IDEMPOTENCY_KEY, []),
                required=self.idempotency_required,
            )
            links = [item_of(one) for one in request.requests]
            done = await self.batches.create_many(principal=principal, links=links, key=key)
            call.replayed = done.replayed
            return pb.BatchCreateLinksResponse(
                results=[convert.batch_result(result) for result in done.results()]
            )

        return await self._answer(context, work)

    async def GetLink(self, request: pb.GetLinkRequest, context: Context) -> pb.Link:
        async def work(call: Call) -> pb.Link:
            principal = await self._caller(call, "links:read")
            found = await self.links.get(
                principal=principal, code=request.code, domain=request.domain or None
            )
            return convert.link(found)

        return await self._answer(context, work)

    async def ListLinks(
        self, request: pb.ListLinksRequest, context: Context
    ) -> pb.ListLinksResponse:
        async def work(call: Call) -> pb.ListLinksResponse:
            principal = await self._caller(call, "links:read")
            size = request.page_size or DEFAULT_PAGE
            if not 1 <= size <= MAX_PAGE:
                raise invalid(
                    "limit", f"must be 1 to {MAX_PAGE} (0: {DEFAULT_PAGE})", location="query"
                )
            page = await self.links.list_(
                principal=principal,
                limit=size,
                cursor=request.page_token or None,
                tags=[request.tag, *request.tags] if request.tag else list(request.tags),
                domain=request.domain or None,
                q=request.query or None,
                sort=request.order_by or "newest",
            )
            return pb.ListLinksResponse(
                links=[convert.link(item) for item in page.items],
                next_page_token=page.next_cursor or "",
            )

        return await self._answer(context, work)

    async def UpdateLink(self, request: pb.UpdateLinkRequest, context: Context) -> pb.Link:
        async def work(call: Call) -> pb.Link:
            principal = await self._caller(call, "links:write")
            if request.expected_version <= 0:
                raise Problem(
                    428,
                    "precondition-required",
                    "Precondition Required",
                    "Send expected_version, the link's current version, so that a "
                    "concurrent change is not silently overwritten.",
                )
            body = convert.update_body(request)
            key = key_for(call.metadata.get(IDEMPOTENCY_KEY, []))
            link_in = validated(LinkUpdate, body)
            done = await self.links.update(
                principal=principal,
                code=request.code,
                link_in=link_in,
                versions=Versions(frozenset({request.expected_version})),
                key=key,
                domain=request.domain or None,
            )
            call.replayed = done.replayed
            return convert.link(done.value)

        return await self._answer(context, work)

    async def DeleteLink(self, request: pb.DeleteLinkRequest, context: Context) -> empty_pb2.Empty:
        async def work(call: Call) -> empty_pb2.Empty:
            principal = await self._caller(call, "links:write")
            expected = request.expected_version
            versions = Versions(frozenset({expected})) if expected > 0 else Versions.any()
            await self.links.delete(
                principal=principal,
                code=request.code,
                versions=versions,
                domain=request.domain or None,
            )
            return empty_pb2.Empty()

        return await self._answer(context, work)

    async def ResolveLink(
        self, request: pb.ResolveLinkRequest, context: Context
    ) -> pb.ResolveLinkResponse:
        async def work(call: Call) -> pb.ResolveLinkResponse:
            # An edge proxy resolves for many visitors: the redirect policy applies to
            # each visitor, as it does to GET /{code}, not the API policy to the proxy.
            # Any key may resolve its own visit, as anyone may follow a link; naming
            # the visitor needs `proxy`.
            principal = await self._caller(call, None, counted=False)
            named = named_visitor(request, call)
            visitor = named if named is not None and principal.is_proxy else own(call, request)
            visits = self.visits
            if named is not None and not principal.is_proxy:
                # Refused, not ignored: a client that means to speak for its visitors
                # learns at once that its key cannot, instead of from its statistics.
                # The call still counts against the caller's own limit, as any does.
                decision = await visits.limit(visitor.ip)
                call.scope[SCOPE_KEY] = decision
                if decision is not None and not decision.allowed:
                    raise too_many_requests(decision)
                raise proxy_key_required([f for f in VISITOR_FIELDS if getattr(request, f)])
            # Not counted in L1 yet: no fast path read it for this call.
            password = request.password if request.HasField("password") else None
            outcome = await visits.decide(
                request.code,
                visitor,
                domain=visits.domains.visited(request.domain),
                peek=request.peek,
                counted=False,
                password=password,
            )
            if outcome.limit is not None:
                call.scope[SCOPE_KEY] = outcome.limit
            if outcome.location is not None:
                # A link's fallback or its domain's redirect, in the refusal's stead.
                return pb.ResolveLinkResponse(location=outcome.location, redirect_status=302)
            if outcome.preview is not None:
                return pb.ResolveLinkResponse(preview=convert.preview(outcome.preview))
            if outcome.target is None:
                assert outcome.refusal is not None
                raise outcome.refusal
            target = outcome.target
            # A proto string is text: as UTF-8 it is the query an HTTP client would send
            # for it (latin-1 would garble ü and fail on €).
            headers = dict(target.headers_for(request.query.encode(), outcome.at))
            return pb.ResolveLinkResponse(
                location=headers[b"location"].decode("ascii"),
                redirect_status=target.status,
                cache_control=headers.get(b"cache-control", b"").decode("ascii"),
            )

        return await self._answer(context, work)

    async def GetLinkStats(self, request: pb.GetLinkStatsRequest, context: Context) -> pb.LinkStats:
        async def work(call: Call) -> pb.LinkStats:
            principal = await self._caller(call, "stats:read")
            interval = convert.INTERVALS.get(request.interval)
            if interval is None:
                raise invalid("interval", "must be HOUR or DAY", location="query")
            top = request.top or DEFAULT_TOP
            if not 1 <= top <= MAX_TOP:
                raise invalid("top", f"must be 1 to {MAX_TOP} (0: {DEFAULT_TOP})", location="query")
            stats = self.stats
            span = stats.window(
                start=convert.moment_of(request, "start_time"),
                end=convert.moment_of(request, "end_time"),
                interval=interval,
            )
            found = await stats.link(
                principal=principal,
                code=request.code,
                span=span,
                top=top,
                domain=request.domain or None,
            )
            return convert.link_stats(found)

        return await self._answer(context, work)
