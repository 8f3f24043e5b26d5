"""What `kurz serve` and `kurz worker` write: a line per record, with time, level and
logger, as text or JSON, at KURZ_LOG_LEVEL, with the request's id on its lines."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.support import Server, kurz_env, run, started_worker
from tests.support import PostgresServer

# 2026-01-01T12:00:00.123Z INFO uvicorn.error Application startup complete.
TEXT_LINE = re.compile(
    r"(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) "
    r"(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) (?P<logger>[\w.]+) (?P<message>.*)"
)
# What kurz makes when it takes none: 16 hex digits.
MADE_ID = re.compile(r"[0-9a-f]{16}")


def served(cwd: Path, env: dict[str, str], *paths: str) -> tuple[list[httpx.Response], str]:
    """Start `kurz serve`, GET each path, stop it: the answers and all it wrote."""
    server = Server(cwd, env)
    try:
        server.wait_ready()
        answers = [httpx.get(f"{server.url}{path}") for path in paths]
    finally:
        server.stop()
    return answers, server.output()


def text_lines(output: str, *, multiline: bool = False) -> list[dict[str, str]]:
    """The records: each starts a line. With `multiline`, a message or traceback of
    several lines goes on in the lines that follow, as a log shipper's rule expects."""
    lines = output.splitlines()
    assert lines, "nothing was logged"
    parsed: list[dict[str, str]] = []
    for line in lines:
        found = TEXT_LINE.fullmatch(line)
        if multiline and found is None and parsed:
            parsed[-1]["message"] += "\n" + line
            continue
        assert found is not None, f"not a log line: {line!r} in\n{output}"
        parsed.append(found.groupdict())
    return parsed


def json_lines(output: str) -> list[dict[str, Any]]:
    lines = output.splitlines()
    assert lines, "nothing was logged"
    records = [json.loads(line) for line in lines]
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys(), record
    return records


def test_serve_logs_time_level_and_logger_on_every_line(tmp_path: Path) -> None:
    _, output = served(tmp_path, kurz_env(KURZ_ACCESS_LOG="true"), "/healthz")
    loggers = {line["logger"] for line in text_lines(output)}
    # kurz's own, uvicorn's, and the access log all go through the one handler.
    assert {"kurz.cli", "uvicorn.error", "uvicorn.access"} <= loggers, output


def test_worker_logs_time_level_and_logger_on_every_line(tmp_path: Path) -> None:
    # A worker finds the database `kurz migrate` made; it makes none of its own.
    assert run(["migrate"], kurz_env(), tmp_path).returncode == 0
    worker, seen = started_worker(kurz_env(), tmp_path)
    worker.terminate()
    rest, _ = worker.communicate(timeout=60)
    lines = text_lines(seen + rest)
    assert any(line["message"].endswith(" running") for line in lines), lines
    assert any(line["message"].endswith(" stopped") for line in lines), lines


def test_json_format_writes_one_object_a_line(tmp_path: Path) -> None:
    env = kurz_env(KURZ_LOG_FORMAT="json", KURZ_ACCESS_LOG="true")
    [answer], output = served(tmp_path, env, "/healthz")
    records = json_lines(output)
    assert any(r["logger"] == "uvicorn.error" for r in records), records
    # The access log line is written within the request: it carries its id.
    request_id = answer.headers["x-request-id"]
    [access] = [r for r in records if r.get("request_id") == request_id]
    assert access["logger"] == "uvicorn.access"
    assert "GET /healthz" in access["message"]


def test_debug_level_shows_debug_lines(tmp_path: Path) -> None:
    _, output = served(tmp_path, kurz_env(KURZ_LOG_LEVEL="debug"))
    assert "DEBUG" in {line["level"] for line in text_lines(output)}, output


def test_a_request_id_is_made_or_taken_from_a_trusted_proxy_and_logged(
    own_postgres: PostgresServer, tmp_path: Path
) -> None:
    env = kurz_env(KURZ_DATABASE_URL=own_postgres.url)
    assert run(["migrate"], env, tmp_path).returncode == 0
    # The same client, 127.0.0.1, as a client to the first, as a proxy to the second.
    direct = Server(tmp_path, {**env, "KURZ_LOG_LEVEL": "warning"})
    behind = Server(
        tmp_path, {**env, "KURZ_TRUSTED_PROXIES": "127.0.0.1", "KURZ_LOG_FORMAT": "json"}
    )
    try:
        direct.wait_ready()
        behind.wait_ready()
        # A readiness check that fails logs a warning within its request.
        own_postgres.stop()
        sent = {"X-Request-ID": "edge-7f3a9c"}
        made = httpx.get(f"{direct.url}/readyz", headers=sent)
        taken = httpx.get(f"{behind.url}/readyz", headers=sent)
    finally:
        direct.stop()
        behind.stop()
    assert (made.status_code, taken.status_code) == (503, 503)

    assert MADE_ID.fullmatch(made.headers["x-request-id"]), made.headers
    # The database's error, in the message, has several lines.
    lines = text_lines(direct.output(), multiline=True)
    [warning] = [line for line in lines if "readiness check failed" in line["message"]]
    assert warning["level"] == "WARNING"
    assert warning["message"].startswith(f"request_id={made.headers['x-request-id']} ")
    # KURZ_LOG_LEVEL=warning: not one of the INFO lines a start and a stop write.
    assert {line["level"] for line in lines} <= {"WARNING", "ERROR"}, lines

    assert taken.headers["x-request-id"] == "edge-7f3a9c"
    records = json_lines(behind.output())
    [record] = [r for r in records if "readiness check failed" in r["message"]]
    assert record["request_id"] == "edge-7f3a9c"
    assert record["level"] == "WARNING"
    assert record["logger"] == "kurz"
