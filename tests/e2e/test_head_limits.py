"""`kurz serve` bounds what a client may send before its request starts (ADR 0013)."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import Server, kurz_env, run
from tests.support import free_port

# Generous bounds: the server's deadline is a fraction of them, so they only catch a
# server that never closes, and never measure how fast it does.
PATIENCE = 30.0
HEAD = b"GET /healthz HTTP/1.1\r\nHost: kurz\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """kurz serve with the default size limits and a short head deadline."""
    started = Server(tmp_path_factory.mktemp("head"), kurz_env(KURZ_HEAD_TIMEOUT="1"))
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE)


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def problem(response: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    """Status, fields and JSON body of a raw HTTP/1.1 response."""
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), fields, json.loads(body)


def test_an_oversize_header_field_gets_431(server: Server) -> None:
    response = httpx.get(f"{server.url}/healthz", headers={"X-Big": "a" * 17_000})
    assert response.status_code == 431
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "/problems/request-header-fields-too-large"
    assert body["status"] == 431
    assert "16384" in body["detail"]


def test_a_head_over_the_total_limit_gets_431(server: Server) -> None:
    # Each field well under the one-field limit; together past the head's 64 KiB.
    fields = {f"X-Part-{i}": "b" * 1_000 for i in range(80)}
    response = httpx.get(f"{server.url}/healthz", headers=fields)
    assert response.status_code == 431
    assert response.headers["content-type"] == "application/problem+json"
    assert "65536" in response.json()["detail"]


def test_a_large_allowed_head_is_served(server: Server) -> None:
    fields = {f"X-Part-{i}": "c" * 15_000 for i in range(4)}
    response = httpx.get(f"{server.url}/healthz", headers=fields)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_a_huge_header_is_refused_without_reading_it(server: Server) -> None:
    """The server answers once the limit is passed, long before the client is done."""
    total = 40 * 1024 * 1024
    chunk = b"d" * 65536
    sent = 0
    with connect(server) as sock:
        sock.sendall(HEAD + b"X-Huge: ")
        while sent < total:
            if select.select([sock], [], [], 0)[0]:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        assert sent < total, "the server read a 40 MB header without answering"
        status, fields, body = problem(read_all(sock))
    assert status == 431
    assert fields["content-type"] == "application/problem+json"
    assert fields["connection"] == "close"
    assert body["type"] == "/problems/request-header-fields-too-large"


def test_a_trickled_head_is_closed_at_the_deadline(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(HEAD)
        give_up = time.monotonic() + PATIENCE
        # One byte of an endless header field at a time, until the server answers.
        while not select.select([sock], [], [], 0.05)[0]:
            assert time.monotonic() < give_up, "the server kept a trickled head open"
            sock.sendall(b"e")
        status, fields, body = problem(read_all(sock))
    assert status == 408
    assert fields["connection"] == "close"
    assert body["type"] == "/problems/request-timeout"


def test_a_connection_that_sends_nothing_is_closed(server: Server) -> None:
    with connect(server) as sock:
        # Closed without an answer: the client asked nothing.
        assert read_all(sock) == b""


def test_healthz_answers_while_slow_clients_hold_connections(server: Server) -> None:
    silent = [connect(server) for _ in range(50)]
    trickling = [connect(server) for _ in range(50)]
    try:
        for sock in trickling:
            sock.sendall(HEAD + b"X-Slow: f")
        with httpx.Client(base_url=server.url, timeout=PATIENCE) as http:
            for _ in range(10):
                assert http.get("/healthz").status_code == 200
    finally:
        for sock in silent + trickling:
            sock.close()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KURZ_MAX_HEADER_FIELD_BYTES", "0"),
        ("KURZ_MAX_HEAD_BYTES", "-1"),
        ("KURZ_HEAD_TIMEOUT", "0"),
        ("KURZ_HEAD_TIMEOUT", "-5"),
    ],
)
def test_bad_head_settings_are_refused_at_start(tmp_path: Path, name: str, value: str) -> None:
    env = kurz_env(KURZ_PORT=str(free_port()), KURZ_GRPC_PORT="0", **{name: value})
    result = run(["serve"], env, tmp_path)
    assert result.returncode == 1
    assert name in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
