"""Test helpers that are not fixtures."""

from __future__ import annotations

import socket
from datetime import UTC, datetime


class FakeClock:
    """A wall clock that moves only when a test says so."""

    def __init__(self, start: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def iso(self, offset: float = 0.0) -> str:
        return datetime.fromtimestamp(self.now + offset, UTC).isoformat()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
