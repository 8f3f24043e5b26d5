"""`kurz serve` and `kurz worker` with OTEL_EXPORTER_OTLP_ENDPOINT set, exporting to an
OTLP/HTTP receiver the test runs: what arrives is what a collector would get."""

from __future__ import annotations

import gzip
import queue
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.e2e.support import PATIENCE, Server, kurz_env, started_worker


@dataclass(frozen=True)
class Received:
    """One span as a collector got it."""

    service: str
    name: str
    attributes: dict[str, Any]


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return None if kind is None else getattr(value, kind)


class Receiver:
    """An OTLP/HTTP trace receiver on a free port: POST /v1/traces, protobuf."""

    def __init__(self) -> None:
        self.spans: queue.Queue[Received] = queue.Queue()
        spans = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                request = ExportTraceServiceRequest.FromString(body)
                for batch in request.resource_spans:
                    resource = {a.key: _value(a.value) for a in batch.resource.attributes}
                    for scoped in batch.scope_spans:
                        for span in scoped.spans:
                            found = {a.key: _value(a.value) for a in span.attributes}
                            spans.put(Received(resource["service.name"], span.name, found))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def received(self) -> list[Received]:
        """Every span received so far."""
        found = []
        while True:
            try:
                found.append(self.spans.get_nowait())
            except queue.Empty:
                return found


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiving = Receiver()
    receiving.thread.start()
    try:
        yield receiving
    finally:
        receiving.server.shutdown()
        receiving.server.server_close()


def test_serve_exports_a_request_as_it_runs(receiver: Receiver, tmp_path: Path) -> None:
    # Batches leave every 100 ms: the span arrives while kurz still serves.
    env = kurz_env(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, OTEL_BSP_SCHEDULE_DELAY="100")
    server = Server(tmp_path, env)
    try:
        server.wait_ready()
        assert httpx.get(f"{server.url}/api/v1/links").status_code == 401
        while True:
            span = receiver.spans.get(timeout=PATIENCE)
            if span.name == "GET /api/v1/links":
                break
    finally:
        server.stop()

    assert span.service == "kurz"
    assert span.attributes["http.route"] == "/api/v1/links"
    assert span.attributes["http.status_code"] == 401
    assert "traces on: OTLP/HTTP to " + receiver.url + "/v1/traces" in server.output()


def test_serve_and_worker_export_what_is_left_when_they_stop(
    receiver: Receiver, tmp_path: Path
) -> None:
    # Batches would leave only after an hour: what arrives was flushed by stopping.
    env = kurz_env(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, OTEL_BSP_SCHEDULE_DELAY="3600000")
    server = Server(tmp_path, env)
    try:
        server.wait_ready()
        assert httpx.get(f"{server.url}/nothing-here").status_code == 404
    finally:
        server.stop()
    # (uvicorn ends the process with the SIGTERM it got, after the lifespan's end.)

    served = receiver.received()
    [redirect] = [s for s in served if s.attributes.get("http.target") == "/nothing-here"]
    # The fast path found no link; FastAPI's /{code} route rendered the 404.
    assert redirect.name == "GET /{code}"
    assert redirect.attributes["http.status_code"] == 404
    assert "kurz.fast_path" not in redirect.attributes
    assert any(s.attributes.get("db.system") == "sqlite" for s in served)

    # The worker has started once it says so; what it did until then is SQL.
    worker, seen = started_worker(env, tmp_path)
    worker.send_signal(signal.SIGTERM)
    rest, _ = worker.communicate(timeout=PATIENCE)
    assert worker.returncode == 0, seen + rest

    worked = receiver.received()
    assert worked
    assert {s.service for s in worked} == {"kurz"}
    assert any(s.attributes.get("db.system") == "sqlite" for s in worked)
