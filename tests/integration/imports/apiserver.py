"""A real HTTP server standing in for another system's API (Bitly, Kutt, Shlink): an
asyncio server on a free port of 127.0.0.1, started and stopped by the test, answering
each GET from the test's handler with the shapes that system documents."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.support import free_port


@dataclass(frozen=True)
class Asked:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Say nothing until the server stops (past any timeout).
    hang: bool = False


def answer_json(value: Any, status: int = 200, **headers: str) -> Answer:
    body = json.dumps(value).encode()
    return Answer(status, body, {"content-type": "application/json", **headers})


Handler = Callable[[Asked], Answer]


class ApiServer:
    """Records every request; answers from `once` first (in order), then `handler`."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.asked: list[Asked] = []
        self.once: list[Answer] = []
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.wait(list(self._handlers))

    def paths(self) -> list[str]:
        return [asked.path for asked in self.asked]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            _method, target, _version = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            parts = urlsplit(target)
            asked = Asked(unquote(parts.path), dict(parse_qsl(parts.query)), headers)
            self.asked.append(asked)
            answer = self.once.pop(0) if self.once else self.handler(asked)
            if answer.hang:
                await asyncio.Event().wait()
            extra = "".join(f"{name}: {value}\r\n" for name, value in answer.headers.items())
            writer.write(
                f"HTTP/1.1 {answer.status} X\r\n{extra}Content-Length: {len(answer.body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + answer.body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._handlers.discard(task)


@contextlib.asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[ApiServer]:
    server = ApiServer(handler)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
