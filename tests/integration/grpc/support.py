"""Calling one app through both APIs, and putting their answers side by side.

gRPC answers are turned into what REST would have sent (REST's field names, times
as instants), so that a parity test compares two values of one shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
import httpx
from fastapi import FastAPI
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2, status_pb2

from kurz.analytics.models import DIMENSIONS
from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate, scopes_for
from kurz.clock import utcnow
from kurz.config import Settings
from kurz.db import READ_COMMITTED
from kurz.errors import Problem
from kurz.grpc.errors import CONDITION_FIELDS, PROTO_FIELDS, code_of, reason_of
from kurz.grpc.kurz.v1 import links_pb2 as pb
from kurz.grpc.kurz.v1 import links_pb2_grpc
from tests.conftest import BASE_URL
from tests.support import FakeClock, free_port, running

DETAILS = "grpc-status-details-bin"
REPLAYED = "idempotent-replayed"
# The proto's names for Link fields that REST names otherwise (docs/grpc.md).
RENAMED = {
    "create_time": "created_at",
    "update_time": "updated_at",
    "start_time": "valid_from",
    "expire_time": "expires_at",
}
TIMES = frozenset(RENAMED.values())
# Link fields REST renders null where the proto holds none (an empty list or string).
NULL_WHEN_EMPTY = frozenset({"variants", "variant_choice"})


@asynccontextmanager
async def serving(settings: Settings, clock: FakeClock) -> AsyncIterator[FastAPI]:
    """An app whose lifespan, gRPC server included, runs for as long as the block."""
    async with running(settings.model_copy(update={"grpc_port": free_port()}), clock) as app:
        yield app


async def new_key(
    app: FastAPI,
    clock: FakeClock,
    name: str = "tester",
    *,
    admin: bool = False,
    proxy: bool = False,
) -> str:
    """An API key in the app's database; its secret."""
    key_in = ApiKeyCreate(name=name, scopes=scopes_for(admin=admin, proxy=proxy))
    async with app.state.kurz.db.write(READ_COMMITTED) as conn:
        created = await key_queries.create(conn=conn, key_in=key_in, now=utcnow(clock))
    return created.secret


def rest_client(app: FastAPI, secret: str | None) -> httpx.AsyncClient:
    headers = {} if secret is None else {"Authorization": f"Bearer {secret}"}
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers)


@dataclass(frozen=True)
class Reply:
    """A successful call's message and trailing metadata (its text entries)."""

    message: Any
    trailers: dict[str, str]


@dataclass(frozen=True)
class Failure:
    """A failed call, with the google.rpc details of its trailer unpacked."""

    code: grpc.StatusCode
    message: str
    info: Any  # error_details_pb2.ErrorInfo
    # BadRequest's field violations: field -> description.
    violations: dict[str, str]
    # RetryInfo's delay in seconds, when there is a RetryInfo.
    retry_delay: int | None
    trailers: dict[str, str]


def _texts(metadata: Sequence[tuple[str, str | bytes]]) -> dict[str, str]:
    return {key: value for key, value in metadata if isinstance(value, str)}


def details_of(status: Any) -> tuple[Any, dict[str, str], int | None]:
    """A google.rpc.Status's details: its ErrorInfo, BadRequest's violations (field ->
    description) and RetryInfo's delay in seconds (None without one)."""
    found: dict[type[Message], list[Any]] = {
        error_details_pb2.ErrorInfo: [],
        error_details_pb2.BadRequest: [],
        error_details_pb2.RetryInfo: [],
    }
    for packed in status.details:
        kinds = [kind for kind in found if packed.Is(kind.DESCRIPTOR)]
        assert len(kinds) == 1, f"an unexpected detail: {packed.type_url}"
        detail = kinds[0]()
        packed.Unpack(detail)
        found[kinds[0]].append(detail)
    [info] = found[error_details_pb2.ErrorInfo]
    requests, retries = found[error_details_pb2.BadRequest], found[error_details_pb2.RetryInfo]
    assert len(requests) <= 1, status
    assert len(retries) <= 1, status
    violations = {v.field: v.description for r in requests for v in r.field_violations}
    delay = int(retries[0].retry_delay.seconds) if retries else None
    return info, violations, delay


def failure_of(error: grpc.aio.AioRpcError) -> Failure:
    metadata = tuple(error.trailing_metadata() or ())
    raw = [value for key, value in metadata if key == DETAILS]
    assert len(raw) == 1, f"{error.code()} without one {DETAILS}: {metadata}"
    assert isinstance(raw[0], bytes)
    status = status_pb2.Status.FromString(raw[0])
    # The rich status repeats the call's own code and message.
    assert (status.code, status.message) == (error.code().value[0], error.details())
    info, violations, delay = details_of(status)
    return Failure(error.code(), error.details() or "", info, violations, delay, _texts(metadata))


class Rpc:
    """LinkService over a real channel, with an API key unless told otherwise."""

    def __init__(self, channel: grpc.aio.Channel, secret: str | None) -> None:
        # Generated code, untyped (grpcio-tools writes no stubs for services).
        self.stub = links_pb2_grpc.LinkServiceStub(channel)  # type: ignore[no-untyped-call]
        self.secret = secret

    async def call(
        self,
        method: str,
        request: Message,
        *,
        metadata: Sequence[tuple[str, str]] = (),
        secret: str | None = "",
    ) -> Reply | Failure:
        """`secret` "" (the default): this client's key; None: no authorization at all."""
        secret = self.secret if secret == "" else secret
        auth = () if secret is None else (("authorization", f"Bearer {secret}"),)
        call = getattr(self.stub, method)(request, metadata=(*auth, *metadata))
        try:
            message = await call
        except grpc.aio.AioRpcError as error:
            return failure_of(error)
        return Reply(message, _texts(tuple(await call.trailing_metadata() or ())))

    async def ok(
        self, method: str, request: Message, *, metadata: Sequence[tuple[str, str]] = ()
    ) -> Reply:
        answer = await self.call(method, request, metadata=metadata)
        assert isinstance(answer, Reply), f"{method} failed: {answer}"
        return answer

    async def fails(
        self,
        method: str,
        request: Message,
        *,
        metadata: Sequence[tuple[str, str]] = (),
        secret: str | None = "",
    ) -> Failure:
        answer = await self.call(method, request, metadata=metadata, secret=secret)
        assert isinstance(answer, Failure), f"{method} succeeded: {answer}"
        return answer


@asynccontextmanager
async def rpc_client(app: FastAPI, secret: str | None) -> AsyncIterator[Rpc]:
    port = app.state.kurz.settings.grpc_port
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield Rpc(channel, secret)


def instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset() is not None, f"{text} has no offset"
    return moment


def stamp(text: str) -> Timestamp:
    message = Timestamp()
    message.FromDatetime(instant(text).astimezone(UTC))
    return message


def when(message: Timestamp) -> datetime:
    return message.ToDatetime(tzinfo=UTC)


def rest_link(body: dict[str, Any]) -> dict[str, Any]:
    """A REST link with its times as instants (its rules' too), nulls left out of its
    rules' conditions."""
    link: dict[str, Any] = {
        k: instant(v) if k in TIMES and v is not None else v for k, v in body.items()
    }
    for rule in link.get("rules", []):
        rule["conditions"] = [
            {k: instant(v) if k in ("from", "until") else v for k, v in c.items() if v is not None}
            for c in rule["conditions"]
        ]
    return link


# The proto's names for a condition's fields that REST names otherwise.
CONDITION_NAMES = {"values": "in", "start_time": "from", "end_time": "until"}


def proto_rules(messages: Any) -> list[dict[str, Any]]:
    """TargetingRule messages as REST renders rules (unset fields left out)."""
    rules = []
    for rule in messages:
        conditions = []
        for condition in rule.conditions:
            part: dict[str, Any] = {}
            for field in condition.DESCRIPTOR.fields:
                name, value = (
                    CONDITION_NAMES.get(field.name, field.name),
                    getattr(condition, field.name),
                )
                if field.is_repeated:
                    if value:
                        part[name] = list(value)
                elif field.has_presence:
                    if condition.HasField(field.name):
                        part[name] = when(value) if isinstance(value, Timestamp) else value
                elif value:
                    part[name] = value
            conditions.append(part)
        rules.append({"url": rule.url, "match": rule.match, "conditions": conditions})
    return rules


def proto_link(message: Any) -> dict[str, Any]:
    """A Link message as REST renders a link: every field, under REST's name (a field
    that is a message, as a dict of its own)."""
    out: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        name, value = RENAMED.get(field.name, field.name), getattr(message, field.name)
        if field.name == "rules":
            out[name] = proto_rules(value)
        elif name in NULL_WHEN_EMPTY and not value:
            out[name] = None
        elif field.is_repeated:
            out[name] = [proto_link(v) if isinstance(v, Message) else v for v in value]
        elif field.has_presence and not message.HasField(field.name):
            out[name] = None
        elif isinstance(value, Timestamp):
            out[name] = when(value)
        elif isinstance(value, Message):  # a LinkActor, as REST's {"user", "key"}
            out[name] = proto_link(value)
        else:
            out[name] = value
    return out


def without_code(link: dict[str, Any]) -> dict[str, Any]:
    """What two links made from one request share (the clock is a test's own)."""
    return {k: v for k, v in link.items() if k not in ("code", "short_url")}


def create_request(body: dict[str, Any]) -> pb.CreateLinkRequest:
    """The CreateLinkRequest for a REST POST body."""
    fields = dict(body)
    for rest_name, proto_name in (("valid_from", "start_time"), ("expires_at", "expire_time")):
        if rest_name in fields:
            fields[proto_name] = stamp(fields.pop(rest_name))
    return pb.CreateLinkRequest(**fields)


async def rpc_create(rpc: Rpc, **body: Any) -> dict[str, Any]:
    body.setdefault("url", "https://example.com/")
    reply = await rpc.ok("CreateLink", create_request(body))
    return proto_link(reply.message)


async def rest_get(api: httpx.AsyncClient, code: str) -> dict[str, Any]:
    response = await api.get(f"/api/v1/links/{code}")
    assert response.status_code == 200, response.text
    return rest_link(response.json())


async def rpc_get(rpc: Rpc, code: str) -> dict[str, Any]:
    return proto_link((await rpc.ok("GetLink", pb.GetLinkRequest(code=code))).message)


def rest_stats(body: dict[str, Any]) -> dict[str, Any]:
    """A REST stats body with its times as instants."""
    top = body["top"]
    return {
        **body,
        "from": instant(body["from"]),
        "to": instant(body["to"]),
        "series": [{**point, "at": instant(point["at"])} for point in body["series"]],
        "top": {**top, "from": instant(top["from"]), "to": instant(top["to"])},
    }


def proto_stats(message: Any) -> dict[str, Any]:
    """LinkStats as REST renders a link's stats."""

    def counts(c: Any) -> dict[str, int]:
        return {"clicks": c.clicks, "uniques": c.uniques, "bot_clicks": c.bot_clicks}

    top = message.top
    return {
        "code": message.code,
        "interval": pb.Interval.Name(message.interval).lower(),
        "from": when(message.start_time),
        "to": when(message.end_time),
        "totals": counts(message.totals),
        "series": [{"at": when(p.time), **counts(p.counts)} for p in message.series],
        "top": {
            "from": when(top.start_time),
            "to": when(top.end_time),
            **{
                dimension: [{"value": v.value, "clicks": v.clicks} for v in getattr(top, dimension)]
                for dimension in DIMENSIONS
            },
        },
    }


def proto_field(field: str) -> str:
    head, dot, rest = field.partition(".")
    if head == "rules":
        rest = ".".join(CONDITION_FIELDS.get(part, part) for part in rest.split("."))
    return PROTO_FIELDS.get(head, head) + dot + rest


def assert_same_failure(
    response: httpx.Response, failure: Failure, *, same_detail: bool = True
) -> dict[str, Any]:
    """The gRPC failure says what the REST problem says; the problem, for more checks.

    `same_detail=False` where the two APIs word a message for their own parameter
    (If-Match against expected_version, FastAPI's query checks against the servicer's).
    """
    assert response.status_code >= 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    slug = body["type"].removeprefix("/problems/")
    problem = Problem(response.status_code, slug, body["title"], body["detail"])
    assert failure.code == code_of(problem), (failure, body)
    info = failure.info
    assert (info.domain, info.reason) == ("kurz", reason_of(slug))
    assert info.metadata["type"] == body["type"]
    assert info.metadata["http_status"] == str(response.status_code)
    if same_detail:
        assert failure.message == body["detail"]
    rest_errors = {proto_field(e["field"]): e["message"] for e in body.get("errors", ())}
    if same_detail:
        assert failure.violations == rest_errors
    else:
        assert set(failure.violations) == set(rest_errors)
    if "retry-after" in response.headers:
        assert failure.retry_delay == int(response.headers["retry-after"])
    else:
        assert failure.retry_delay is None
    return body
