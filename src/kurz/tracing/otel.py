"""kurz.tracing's OpenTelemetry side: imported only once tracing is asked for."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import (
    SERVICE_NAME,
    SERVICE_VERSION,
    OTELResourceDetector,
    Resource,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span

from kurz import __version__
from kurz.extras import need
from kurz.jobs.worker import current_job

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from kurz.bootstrap import Parts
    from kurz.jobs.registry import Handler

# The instrumentations' own metrics (request durations, pool use) are never exported:
# kurz's metrics are Prometheus's (docs/metrics.md).
_NO_METRICS = NoOpMeterProvider()
# A redirect answered by KurzApp's fast path (kurz.app), before FastAPI's routing.
FAST_PATH = "kurz.fast_path"
# The span names' methods (OpenTelemetry's HTTP conventions): any other is "HTTP".
_METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT",
                      "TRACE"})  # fmt: skip


class Tracing:
    """A tracer provider, what kurz instrumented for it, and how to undo both."""

    def __init__(self, provider: TracerProvider, *, because: str) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("kurz", __version__)
        self._because = because
        self._undo: list[Callable[[], None]] = []
        self._stopped = False

    @classmethod
    def start(cls, exporter: SpanExporter | None, *, because: str) -> Tracing:
        """Spans batched to `exporter`, by default OTLP/HTTP to the endpoint of the
        standard variables. The service is "kurz" unless OTEL_SERVICE_NAME or
        OTEL_RESOURCE_ATTRIBUTES name it; OTEL_TRACES_SAMPLER and OTEL_BSP_* apply."""
        detected = OTELResourceDetector().detect().attributes
        resource = Resource.create({SERVICE_NAME: "kurz", SERVICE_VERSION: __version__, **detected})
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(exporter or OTLPSpanExporter()))
        return cls(provider, because=because)

    def app(self, app: ASGIApp) -> ASGIApp:
        """`app` inside a server span per HTTP request, the fast path's redirects too,
        named by the route that answered ("GET /api/v1/links/{code}"); its lifespan's
        end shuts tracing down (uvicorn ends a process stopped by a signal with that
        signal, so nothing after its run would)."""
        traced: ASGIApp = OpenTelemetryMiddleware(
            _Served(app, self.shutdown),
            default_span_details=_method,
            tracer_provider=self.provider,
            meter_provider=_NO_METRICS,
            # A span per ASGI message sent or received would outnumber the request's own.
            exclude_spans=["receive", "send"],
        )
        return traced

    def instrument(self, parts: Parts) -> None:
        """Spans for `parts`' SQL, its Redis commands, the gRPC server a lifespan starts
        later, and each job its registry runs. MissingExtra if an instrumentation is
        missing."""
        settings = parts.settings
        sql = SQLAlchemyInstrumentor()
        # The instrumentation declares SQLAlchemy < 2.1 and would refuse kurz's 2.1
        # unasked; its engine events are the same (tests/integration/test_tracing.py).
        sql.instrument(
            engine=parts.db.engine.sync_engine,
            tracer_provider=self.provider,
            meter_provider=_NO_METRICS,
            skip_dep_check=True,
        )
        self._undo.append(sql.uninstrument)
        if settings.redis_url or settings.cache_nodes:
            need("opentelemetry.instrumentation.redis", extra="otel", because=self._because)
            from opentelemetry.instrumentation.redis import RedisInstrumentor

            redis = RedisInstrumentor()
            redis.instrument(tracer_provider=self.provider)
            self._undo.append(redis.uninstrument)
        if settings.grpc_port:
            need("opentelemetry.instrumentation.grpc", extra="otel", because=self._because)
            from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorServer

            grpc = GrpcAioInstrumentorServer()  # type: ignore[no-untyped-call]
            grpc.instrument(tracer_provider=self.provider)
            self._undo.append(grpc.uninstrument)
        parts.registry.wrap(self._job)

    def _job(self, kind: str, handler: Handler) -> Handler:
        tracer = self.tracer

        async def traced(payload: dict[str, Any]) -> None:
            job = current_job()
            attributes: dict[str, str | int] = {"kurz.job.kind": kind, "kurz.job.id": job.id,
                                                "kurz.job.attempt": job.attempts}  # fmt: skip
            with tracer.start_as_current_span(f"job {kind}", attributes=attributes):
                await handler(payload)

        return traced

    def flush(self) -> None:
        """Export every span ended so far (the exporter's timeout applies)."""
        self.provider.force_flush()

    def shutdown(self) -> None:
        """Undo the instrumentations, export what is left, stop the exporter; once."""
        if self._stopped:
            return
        self._stopped = True
        while self._undo:
            self._undo.pop()()
        self.provider.shutdown()


def _method(scope: Scope) -> tuple[str, dict[str, Any]]:
    """A span's name until the route is known: the method alone, never the path (a
    short code or a link's id in it would make a name per request)."""
    method = scope.get("method", "")
    return (method if method in _METHODS else "HTTP"), {}


class _Served:
    """Names the request's server span by its route as the response starts: FastAPI's
    route (scope["route"]), or, for a redirect the fast path sent, /{code} (or /),
    marked kurz.fast_path. Starlette sets scope["app"] on the way in, which the fast
    path never reaches. Calls `stop` (in a thread: it exports) when the lifespan has
    shut the app down."""

    def __init__(self, app: ASGIApp, stop: Callable[[], None]) -> None:
        self.app = app
        self.stop = stop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._stopping(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        span = trace.get_current_span()

        async def named(message: Message) -> None:
            if message["type"] == "http.response.start":
                _name(span, scope)
            await send(message)

        await self.app(scope, receive, named)

    def _stopping(self, send: Send) -> Send:
        async def stopping(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await asyncio.to_thread(self.stop)
            await send(message)

        return stopping


def _name(span: Span, scope: Scope) -> None:
    if not span.is_recording():
        return
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if path is None and "app" not in scope:
        path = "/" if scope["path"] == "/" else "/{code}"
        span.set_attribute(FAST_PATH, True)
    if isinstance(path, str):
        span.update_name(f"{_method(scope)[0]} {path}")
        span.set_attribute("http.route", path)
