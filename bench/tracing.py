"""CPU per request with traces (kurz.tracing) on against off, SQLite and PostgreSQL.

    python -m bench.tracing [--requests 1000] [--rounds 5] [--backends sqlite,postgresql]
                            [--no-record]

kurz runs in this process under httpx's ASGI transport (as a server would run it:
with tracing on, the app inside kurz.tracing's middleware), on a fresh database with
one link and an API key. Three variants, in turn within each round, so that they are
measured side by side:

- off: no OTLP endpoint; the app as kurz serves it without one;
- on: every request traced (the SDK's default sampler), each span encoded as the
  OTLP/HTTP exporter encodes it (protobuf) and dropped instead of sent: what
  kurz's process does for a real collector but the HTTP POST;
- sampled out: OTEL_TRACES_SAMPLER=always_off, the instrumentation's cost alone.

Per round and variant, `--requests` of each of: GET /api/v1/links/{code} (the key's
check and one SQL read) and a cached redirect (GET /{code}, the fast path from L1).
A figure is this process's CPU (time.process_time, every thread: the batch
processor's export included, as the variant's spans are flushed before the clock
stops) per request, median over the rounds; PostgreSQL's own side is not included.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence

import httpx
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from starlette.types import ASGIApp

from bench import harness
from bench.harness import BenchError
from kurz import tracing
from kurz.app import create_app
from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate, scopes_for
from kurz.bootstrap import build
from kurz.clock import system_clock, utcnow
from kurz.config import Settings
from kurz.db import READ_COMMITTED, Database

VARIANTS = ("off", "on", "sampled out")
CALLS = ("GET /api/v1/links/{code}", "GET /{code} (cached)")


class Encoded(SpanExporter):
    """The OTLP/HTTP exporter's work but the POST: each batch encoded, then dropped."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        encode_spans(spans).SerializePartialToString()
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


async def one_variant(url: str, secret: str, variant: str, requests: int) -> dict[str, float]:
    """CPU per request of each call, and spans per request, for one variant."""
    settings = Settings(
        database_url=url,
        ratelimit_api="off",
        ratelimit_redirect="off",
        ratelimit_auth_fail="off",
        grpc_port=0,
        embedded_worker=False,
        analytics=False,
    )
    parts = build(settings)
    exporter = Encoded()
    traced = None
    if variant != "off":
        if variant == "sampled out":
            os.environ["OTEL_TRACES_SAMPLER"] = "always_off"
        try:
            traced = tracing.start({}, exporter=exporter)
        finally:
            os.environ.pop("OTEL_TRACES_SAMPLER", None)
        assert traced is not None
        traced.instrument(parts)
    app = create_app(parts)
    served: ASGIApp = app if traced is None else traced.app(app)
    figures: dict[str, float] = {}
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=served)
            bearer = {"Authorization": f"Bearer {secret}"}
            async with httpx.AsyncClient(
                transport=transport, base_url="http://b", headers=bearer
            ) as client:

                async def api() -> None:
                    answer = await client.get("/api/v1/links/bench")
                    if answer.status_code != 200:
                        raise BenchError(f"GET answered {answer.status_code}: {answer.text}")

                async def redirect() -> None:
                    answer = await client.get("/bench")
                    if answer.status_code != 302:
                        raise BenchError(f"GET /bench answered {answer.status_code}")

                calls: dict[str, Callable[[], Awaitable[None]]] = dict(
                    zip(CALLS, (api, redirect), strict=True)
                )
                for name, call in calls.items():
                    for _ in range(20):  # warm: L1 filled, first-use costs paid
                        await call()
                    if traced is not None:
                        traced.flush()
                    exported = exporter.spans
                    start = time.process_time()
                    for _ in range(requests):
                        await call()
                    if traced is not None:
                        traced.flush()
                    figures[name] = (time.process_time() - start) / requests
                    figures[f"{name} spans"] = (exporter.spans - exported) / requests
    finally:
        if traced is not None:
            traced.shutdown()
    return figures


async def measure(url: str, opts: harness.BackendRun) -> dict[str, float]:
    db = Database.from_url(url)
    try:
        async with db.write(READ_COMMITTED) as conn:
            created = await key_queries.create(
                conn=conn,
                key_in=ApiKeyCreate(name="bench", scopes=scopes_for(admin=True)),
                now=utcnow(system_clock),
            )
    finally:
        await db.dispose()
    app = create_app(build(Settings(database_url=url, grpc_port=0, embedded_worker=False)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        bearer = {"Authorization": f"Bearer {created.secret}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://b", headers=bearer) as c:
            made = await c.post(
                "/api/v1/links", json={"url": "https://example.com/bench", "alias": "bench"}
            )
            if made.status_code != 201:
                raise BenchError(f"POST answered {made.status_code}: {made.text}")
    rounds: dict[str, list[float]] = {}
    for _ in range(opts.rounds):
        for variant in VARIANTS:
            figures = await one_variant(url, created.secret, variant, opts.requests)
            for name, value in figures.items():
                rounds.setdefault(f"{variant}|{name}", []).append(value)
    return {key: statistics.median(values) for key, values in rounds.items()}


def main(argv: Sequence[str]) -> int:
    opts = harness.backend_run(
        argv, prog="bench.tracing", doc=__doc__, requests=1000, unit="requests of each call"
    )
    results = harness.each_backend(opts, _measure)
    if results is None:
        return 1
    lines = [
        f"{opts.requests} requests of each call a round and variant, median of"
        f" {opts.rounds} rounds; CPU {harness.cpu_model()}; {harness.source_state()}",
        "",
        "| backend | request | off, µs CPU | on, µs CPU | on/off | spans | sampled out, µs"
        " CPU | sampled out/off |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for backend, figures in results.items():
        for call in CALLS:
            off, on = figures[f"off|{call}"], figures[f"on|{call}"]
            out = figures[f"sampled out|{call}"]
            lines.append(
                f"| {backend} | {call} | {off * 1e6:,.0f} | {on * 1e6:,.0f} | {on / off:.2f} |"
                f" {figures[f'on|{call} spans']:.0f} | {out * 1e6:,.0f} | {out / off:.2f} |"
            )
    harness.publish(
        "CPU per request with traces on (kurz.tracing)",
        lines,
        target="bench-tracing",
        module="bench.tracing",
        argv=argv,
        keep=not opts.no_record,
    )
    return 0


async def _measure(backend: str, opts: harness.BackendRun) -> dict[str, float]:
    async with harness.migrated_database(backend, "tracing") as url:
        return await measure(url, opts)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
