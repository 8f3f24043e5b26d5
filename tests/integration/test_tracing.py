"""kurz.tracing in process: the spans of real requests, SQL, Redis commands, gRPC calls
and jobs, caught by OpenTelemetry's in-memory exporter (no collector)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
from fastapi import FastAPI
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.types import ASGIApp

from kurz import tracing
from kurz.accounts import Passwords
from kurz.app import create_app
from kurz.bootstrap import build
from kurz.config import Settings
from kurz.grpc.kurz.v1 import links_pb2 as pb
from kurz.jobs import Worker
from kurz.tracing.otel import FAST_PATH, Tracing
from tests.conftest import BASE_URL, app_settings
from tests.integration.grpc.support import Rpc, new_key
from tests.support import CHEAP_PASSWORDS, FakeClock, free_port


@dataclass
class Traced:
    """An app whose parts are traced to `spans`, its lifespan running."""

    app: FastAPI
    # What a server runs: the app inside kurz.tracing's middleware.
    served: ASGIApp
    tracing: Tracing
    exporter: InMemorySpanExporter

    def client(self, secret: str | None = None) -> httpx.AsyncClient:
        headers = {} if secret is None else {"Authorization": f"Bearer {secret}"}
        transport = httpx.ASGITransport(app=self.served)
        return httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers)

    def spans(self) -> Sequence[ReadableSpan]:
        self.tracing.flush()
        return self.exporter.get_finished_spans()


@asynccontextmanager
async def traced(settings: Settings, clock: FakeClock) -> AsyncIterator[Traced]:
    exporter = InMemorySpanExporter()
    started = tracing.start({}, exporter=exporter)
    assert started is not None
    try:
        parts = build(settings, clock=clock, passwords=Passwords(CHEAP_PASSWORDS))
        started.instrument(parts)
        app = create_app(parts)
        async with app.router.lifespan_context(app):
            yield Traced(app, started.app(app), started, exporter)
    finally:
        started.shutdown()


def server_span(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    [span] = [s for s in spans if s.kind == SpanKind.SERVER and s.name == name]
    return span


def children(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    return app_settings(sqlite_url)


async def test_an_api_request_is_a_server_span_with_its_sql_inside(
    settings: Settings, clock: FakeClock
) -> None:
    async with traced(settings, clock) as kurz:
        secret = await new_key(kurz.app, clock)
        async with kurz.client(secret) as api:
            made = await api.post("/api/v1/links", json={"url": "https://example.com/traced"})
            assert made.status_code == 201, made.text
        spans = kurz.spans()

    request = server_span(spans, "POST /api/v1/links")
    assert attributes(request)["http.route"] == "/api/v1/links"
    assert attributes(request)["http.status_code"] == 201
    assert request.resource.attributes["service.name"] == "kurz"
    sql = [s for s in children(spans, request) if attributes(s).get("db.system") == "sqlite"]
    statements = [attributes(s).get("db.statement", "") for s in sql]
    assert any(statement.startswith("INSERT INTO links") for statement in statements), statements
    assert all(s.kind == SpanKind.CLIENT for s in sql)


async def test_redirects_from_the_fast_path_are_traced_by_route_not_by_code(
    settings: Settings, clock: FakeClock
) -> None:
    async with traced(settings, clock) as kurz:
        secret = await new_key(kurz.app, clock)
        async with kurz.client(secret) as api:
            made = await api.post(
                "/api/v1/links", json={"url": "https://example.com/r", "alias": "traced"}
            )
            assert made.status_code == 201, made.text
            kurz.tracing.flush()
            kurz.exporter.clear()
            # The first from SQL (then cached), the second from L1, both by the fast path.
            for _ in range(2):
                assert (await api.get("/traced")).status_code == 302
            assert (await api.get("/api/v1/links/traced")).status_code == 200
        spans = kurz.spans()

    redirects = [s for s in spans if s.kind == SpanKind.SERVER and s.name == "GET /{code}"]
    assert len(redirects) == 2
    for span in redirects:
        assert attributes(span)[FAST_PATH] is True
        assert attributes(span)["http.route"] == "/{code}"
        assert attributes(span)["http.status_code"] == 302
        assert attributes(span)["http.target"] == "/traced"
    first, second = redirects
    assert any(attributes(s).get("db.system") == "sqlite" for s in children(spans, first))
    assert children(spans, second) == []
    api_call = server_span(spans, "GET /api/v1/links/{code}")
    assert FAST_PATH not in attributes(api_call)


async def test_an_incoming_traceparent_is_the_parent(settings: Settings, clock: FakeClock) -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    async with traced(settings, clock) as kurz:
        async with kurz.client() as anon:
            assert (await anon.get("/healthz", headers={"traceparent": parent})).status_code == 200
        spans = kurz.spans()

    span = server_span(spans, "GET /healthz")
    assert span.context is not None
    assert span.parent is not None
    assert f"{span.context.trace_id:032x}" == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert f"{span.parent.span_id:016x}" == "00f067aa0ba902b7"


async def test_redis_commands_are_spans(
    sqlite_url: str, redis_available: str, clock: FakeClock
) -> None:
    # Scaled out over the test Redis: a link written publishes its invalidation there.
    settings = app_settings(sqlite_url, redis_url=redis_available)
    async with traced(settings, clock) as kurz:
        secret = await new_key(kurz.app, clock)
        async with kurz.client(secret) as api:
            made = await api.post("/api/v1/links", json={"url": "https://example.com/redis"})
            assert made.status_code == 201, made.text
        spans = kurz.spans()

    request = server_span(spans, "POST /api/v1/links")
    redis = [s for s in children(spans, request) if attributes(s).get("db.system") == "redis"]
    assert redis, [s.name for s in children(spans, request)]
    assert all(s.kind == SpanKind.CLIENT for s in redis)


async def test_grpc_calls_are_server_spans_with_their_sql_inside(
    settings: Settings, clock: FakeClock
) -> None:
    port = free_port()
    async with traced(settings.model_copy(update={"grpc_port": port}), clock) as kurz:
        secret = await new_key(kurz.app, clock)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            # The health stubs' types declare no methods on HealthStub.
            check = health_pb2_grpc.HealthStub(channel).Check  # type: ignore[attr-defined]
            answer = await check(health_pb2.HealthCheckRequest(service=""))
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
            missing = await Rpc(channel, secret).fails(
                "ResolveLink", pb.ResolveLinkRequest(code="nope")
            )
            assert missing.code == grpc.StatusCode.NOT_FOUND
        spans = kurz.spans()

    health = server_span(spans, "/grpc.health.v1.Health/Check")
    assert attributes(health)["rpc.system"] == "grpc"
    assert attributes(health)["rpc.grpc.status_code"] == grpc.StatusCode.OK.value[0]
    resolve = server_span(spans, "/kurz.v1.LinkService/ResolveLink")
    assert attributes(resolve)["rpc.service"] == "kurz.v1.LinkService"
    assert attributes(resolve)["rpc.method"] == "ResolveLink"
    assert attributes(resolve)["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    # The key's check and the link's lookup.
    assert any(attributes(s).get("db.system") == "sqlite" for s in children(spans, resolve))


async def test_each_job_is_a_span_around_its_sql(settings: Settings, clock: FakeClock) -> None:
    async with traced(settings, clock) as kurz:
        parts = kurz.app.state.kurz
        job = await parts.jobs.enqueue("purge-idempotency-keys", {})
        worker = Worker(parts.jobs, parts.registry, concurrency=1, lease=30.0)
        # Also whatever periodic jobs are due: each its own span.
        assert await worker.run_once() >= 1
        spans = kurz.spans()

    [span] = [s for s in spans if attributes(s).get("kurz.job.id") == job.id]
    assert span.name == "job purge-idempotency-keys"
    assert attributes(span) == {
        "kurz.job.kind": "purge-idempotency-keys",
        "kurz.job.id": job.id,
        "kurz.job.attempt": 1,
    }
    assert any(attributes(s).get("db.system") == "sqlite" for s in children(spans, span))


@pytest.fixture(autouse=True)
def _no_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """The exporter given is the only one: no variable of the machine's sends elsewhere."""
    for name in tracing.ENDPOINTS:
        monkeypatch.delenv(name, raising=False)
