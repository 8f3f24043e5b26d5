"""kurz.logs: a line per record, as text or JSON, with the request id when there is one."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import pytest

from kurz.logs import REQUEST_ID, JsonFormatter, RequestIdFilter, TextFormatter, config


def record(message: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    made = logging.LogRecord(
        "kurz.test", logging.WARNING, __file__, 1, message, args,
        (type(exc), exc, exc.__traceback__) if exc else None,
    )  # fmt: skip
    RequestIdFilter().filter(made)
    return made


@pytest.fixture
def request_id() -> Iterator[str]:
    token = REQUEST_ID.set("3f9a2c1d")
    yield "3f9a2c1d"
    REQUEST_ID.reset(token)


def failure() -> ValueError:
    try:
        raise ValueError("boom")
    except ValueError as exc:
        return exc


def test_a_text_line_has_time_level_logger_and_message() -> None:
    line = TextFormatter().format(record("cache node %s left", "a"))
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARNING kurz\.test cache node a left", line
    ), line


def test_a_text_line_in_a_request_names_it(request_id: str) -> None:
    line = TextFormatter().format(record("readiness check failed"))
    assert line.endswith(" WARNING kurz.test request_id=3f9a2c1d readiness check failed")


def test_a_json_line_is_one_object_with_the_exception_as_a_string(request_id: str) -> None:
    line = JsonFormatter().format(record("job %d failed\nbadly", 7, exc=failure()))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry.keys() == {"time", "level", "logger", "message", "request_id", "exc_info"}
    assert (entry["level"], entry["logger"]) == ("WARNING", "kurz.test")
    assert entry["message"] == "job 7 failed\nbadly"
    assert entry["request_id"] == "3f9a2c1d"
    assert entry["exc_info"].startswith("Traceback (most recent call last):")
    assert entry["exc_info"].endswith("ValueError: boom")


def test_a_json_line_outside_a_request_has_no_request_id() -> None:
    assert "request_id" not in json.loads(JsonFormatter().format(record("started")))


@pytest.mark.parametrize(
    ("level", "kurz", "others"),
    [("debug", "DEBUG", "WARNING"), ("info", "INFO", "WARNING"), ("error", "ERROR", "ERROR")],
)
def test_the_level_is_kurzs_and_uvicorns_other_libraries_stay_at_warning(
    level: str, kurz: str, others: str
) -> None:
    made = config(level=level, fmt="text")
    assert made["loggers"]["kurz"]["level"] == kurz
    assert made["loggers"]["uvicorn"]["level"] == kurz
    assert made["root"]["level"] == others
