"""kurz.tracing off and on: with no OTLP endpoint set kurz loads nothing of
OpenTelemetry beyond the API package FastAPI itself imports; with one set and
kurz[otel] missing, `kurz serve` says so in one line; the variables it reads.

The processes are Python's own: what they imported is the finding. kurz[otel] is made
missing there by an import hook that refuses its modules as an absent distribution
would (ModuleNotFoundError), before any is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kurz import __version__, tracing
from tests.support import free_port

# The distributions of kurz[otel]: none of their modules may load while tracing is off.
OTEL_EXTRA = ("opentelemetry.sdk", "opentelemetry.exporter", "opentelemetry.instrumentation")

BLOCK_OTEL = f"""
import importlib.abc, sys

class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.startswith({OTEL_EXTRA!r}):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Absent())
"""


def python(code: str, *, env: dict[str, str] | None = None, cwd: Path | None = None,
           ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KURZ_", "OTEL_"))}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=clean | (env or {}),
        cwd=cwd,
        check=False,
    )


def loaded(done: subprocess.CompletedProcess[str]) -> set[str]:
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


PRINT_OTEL = """
import json, sys
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry"
                        or m.startswith("kurz.tracing"))))
"""


def test_with_no_endpoint_kurz_loads_no_more_of_opentelemetry_than_fastapi(
    sqlite_url: str,
) -> None:
    served = python(
        textwrap.dedent(f"""
        import asyncio
        import httpx
        import kurz.cli
        from kurz import __version__, tracing
        from kurz.app import create_app
        from kurz.bootstrap import build
        from kurz.config import Settings

        assert tracing.start() is None
        app = create_app(build(Settings(database_url={sqlite_url!r}, grpc_port=0)))

        async def main():
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                    assert (await c.get("/healthz")).status_code == 200
                    assert (await c.get("/nothing-here")).status_code == 404

        asyncio.run(main())
        """)
        + PRINT_OTEL
    )
    fastapi_alone = python("import fastapi\n" + PRINT_OTEL)

    modules = loaded(served)
    assert modules - loaded(fastapi_alone) == {"kurz.tracing"}
    assert not any(m.startswith(OTEL_EXTRA) for m in modules)


def test_kurz_help_imports_nothing_of_opentelemetry() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kurz", "--help"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("KURZ_")},
        check=False,
    )

    assert done.returncode == 0, done.stderr
    # -X importtime writes a line per module imported to stderr.
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()]
    assert "typer" in imported
    assert [m for m in imported if m.startswith("opentelemetry")] == []


@pytest.mark.parametrize("variable", tracing.ENDPOINTS)
def test_serve_with_an_endpoint_and_no_extra_says_which_to_install(
    variable: str, tmp_path: Path
) -> None:
    done = python(
        BLOCK_OTEL
        + textwrap.dedent("""
        import sys
        from kurz.cli import main

        sys.argv = ["kurz", "serve"]
        main()
        """),
        env={
            variable: "http://127.0.0.1:4318",
            "KURZ_PORT": str(free_port()),
            "KURZ_GRPC_PORT": "0",
            "KURZ_DATA_DIR": str(tmp_path),
        },
        cwd=tmp_path,
    )

    assert done.returncode == 1, done.stderr
    assert done.stderr == f"error: {variable} is set: install kurz[otel]\n"


def test_the_blocker_blocks_the_extra_only() -> None:
    # The test above is worth what its import hook is: it refuses kurz[otel] and
    # nothing else, FastAPI's opentelemetry API included.
    done = python(
        BLOCK_OTEL
        + """
import fastapi, opentelemetry.trace
from kurz.extras import MissingExtra, need
try:
    need("opentelemetry.sdk.trace", extra="otel", because="X is set")
except MissingExtra as exc:
    print(exc)
"""
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == "X is set: install kurz[otel]\n"


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"},
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ),
        # The SDK's own off switch wins.
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, None),
        # Metrics' or logs' endpoint alone asks for no traces.
        ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://c:4318/v1/metrics"}, None),
    ],
)
def test_which_variables_turn_tracing_on(environ: dict[str, str], variable: str | None) -> None:
    assert tracing.asked(environ) == variable
    if variable is None:
        assert tracing.start(environ) is None


@pytest.mark.parametrize(
    ("environ", "destination"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, "http://c:4318/v1/traces"),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4318/traces",
            },
            "http://t:4318/traces",
        ),
    ],
)
def test_destination_as_the_exporter_reads_it(environ: dict[str, str], destination: str) -> None:
    assert tracing.destination(environ) == destination


@pytest.mark.parametrize(
    ("environ", "name"),
    [
        ({}, "kurz"),
        ({"OTEL_SERVICE_NAME": "short-links"}, "short-links"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=edge,deployment.environment=prod"}, "edge"),
        (
            {"OTEL_RESOURCE_ATTRIBUTES": "service.name=edge", "OTEL_SERVICE_NAME": "wins"},
            "wins",
        ),
    ],
)
def test_the_service_is_kurz_unless_the_standard_variables_name_it(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], name: str
) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    for key in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"):
        monkeypatch.delenv(key, raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    started = tracing.start({}, exporter=InMemorySpanExporter())
    assert started is not None
    try:
        resource = started.provider.resource.attributes
    finally:
        started.shutdown()

    assert resource["service.name"] == name
    assert resource["service.version"] == __version__
