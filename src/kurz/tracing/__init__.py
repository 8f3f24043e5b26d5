"""Traces through OpenTelemetry (kurz[otel], docs/tracing.md), only where the standard
OTLP endpoint variable is set: API requests and redirects, SQL, Redis, gRPC calls and
jobs, exported over OTLP/HTTP.

This module imports nothing of OpenTelemetry: with the variable unset `start` returns
None and kurz loads none of the SDK, its exporter or an instrumentation (the API
package alone is FastAPI's own dependency). kurz.tracing.otel holds the rest.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from kurz.extras import need

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from kurz.tracing.otel import Tracing

# Either turns tracing on; the SDK's exporter reads them (the second names the whole
# URL, the first a base that /v1/traces is added to).
ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

# What kurz.tracing.otel imports whatever the settings; Redis's and gRPC's
# instrumentations are asked for where those are used (Tracing.instrument).
_MODULES = (
    "opentelemetry.sdk.trace",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.instrumentation.asgi",
    "opentelemetry.instrumentation.sqlalchemy",
)


def asked(environ: Mapping[str, str]) -> str | None:
    """The variable that turns tracing on, or None: none is set, or OTEL_SDK_DISABLED
    is true (the SDK's own switch)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    return next((name for name in ENDPOINTS if environ.get(name, "").strip()), None)


def start(
    environ: Mapping[str, str] = os.environ, *, exporter: SpanExporter | None = None
) -> Tracing | None:
    """A tracer provider exporting over OTLP/HTTP when the environment asks for one
    (`asked`), else None; with `exporter` (tests, benchmarks), one exporting there
    whatever the environment says. kurz.extras.MissingExtra without kurz[otel]."""
    because = "tracing was asked for"
    if exporter is None:
        variable = asked(environ)
        if variable is None:
            return None
        because = f"{variable} is set"
    for module in _MODULES:
        need(module, extra="otel", because=because)
    from kurz.tracing.otel import Tracing

    return Tracing.start(exporter, because=because)


def destination(environ: Mapping[str, str] = os.environ) -> str:
    """Where the OTLP/HTTP exporter sends spans, as it reads the variables."""
    whole = environ.get(ENDPOINTS[0], "").strip()
    if whole:
        return whole
    return environ.get(ENDPOINTS[1], "").strip().rstrip("/") + "/v1/traces"
