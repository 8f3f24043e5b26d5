"""Logging for `kurz serve` and `kurz worker`: one handler on stderr, a line per record,
as text or JSON, each line with the id of the request it was written for."""

from __future__ import annotations

import json
import logging
import logging.config
import time
from contextvars import ContextVar
from typing import Any, Literal

from kurz.config import Settings

Format = Literal["text", "json"]

# The id of the request being answered (kurz.requestid sets it), on every record
# written while it is.
REQUEST_ID: ContextVar[str | None] = ContextVar("kurz_request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record the handler writes (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


def timestamp(record: logging.LogRecord) -> str:
    """RFC 3339 in UTC, to the millisecond: sortable, and the same on every host."""
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    """`2026-01-01T12:00:00.123Z WARNING kurz request_id=3f9a... readiness check failed`"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return timestamp(record)

    def formatMessage(self, record: logging.LogRecord) -> str:
        head = f"{record.asctime} {record.levelname} {record.name}"
        request_id = getattr(record, "request_id", None)
        if request_id:
            return f"{head} request_id={request_id} {record.message}"
        return f"{head} {record.message}"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and request_id, exc_info
    and stack_info when the record has them."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry)


def config(*, level: str, fmt: Format) -> dict[str, Any]:
    """The dictConfig: kurz's and uvicorn's loggers at `level`, every other library's
    at WARNING or above (aiosqlite alone would write a line per statement at DEBUG)."""
    level = level.upper()
    others = max(logging.WARNING, logging.getLevelNamesMapping()[level])
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {
            "kurz": {"()": JsonFormatter if fmt == "json" else TextFormatter},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "kurz",
                "filters": ["request_id"],
            },
        },
        "root": {"handlers": ["stderr"], "level": logging.getLevelName(others)},
        "loggers": {
            "kurz": {"level": level},
            "uvicorn": {"level": level},
        },
    }


def configure_logging(settings: Settings) -> None:
    """Configure logging for this process (once, at the start of serve or worker)."""
    logging.config.dictConfig(config(level=settings.log_level, fmt=settings.log_format))
    # warnings.warn() too, instead of bare lines of its own.
    logging.captureWarnings(True)
