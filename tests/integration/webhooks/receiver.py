"""A real HTTP receiver for webhooks: an asyncio server on a free port of 127.0.0.1,
started and stopped by the test, answering each request as the test tells it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook

from tests.support import free_port


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Say nothing until the test ends (past any timeout).
    hang: bool = False
    # A 200 whose body never ends.
    endless: bool = False


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def message_id(self) -> str:
        return self.headers["webhook-id"]

    def verified(self, secret: str) -> dict[str, Any]:
        """The JSON body, once the signature (one of those sent) is checked with
        `secret` by the standardwebhooks package; its time as the header says."""
        at = datetime.fromtimestamp(int(self.headers["webhook-timestamp"]), UTC)
        expected = Webhook(secret).sign(self.message_id, at, self.body)
        assert expected in self.headers["webhook-signature"].split(" "), "bad signature"
        found: dict[str, Any] = json.loads(self.body)
        return found


class Receiver:
    """Records every request; answers from `answers` in order, then 200."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.requests: list[Received] = []
        self.answers: list[Answer] = []
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._arrived = asyncio.Condition()

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

    async def wait_for(self, count: int) -> None:
        """Until `count` requests have arrived (the caller bounds the wait)."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            _method, path, _version = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            answer = self.answers.pop(0) if self.answers else Answer()
            async with self._arrived:
                self.requests.append(Received(path, headers, body))
                self._arrived.notify_all()
            if answer.hang:
                await asyncio.Event().wait()
            extra = "".join(f"{name}: {value}\r\n" for name, value in answer.headers.items())
            if answer.endless:
                start = f"HTTP/1.1 {answer.status} X\r\n{extra}Transfer-Encoding: chunked\r\n\r\n"
                writer.write(start.encode())
                chunk = b"x" * 16_384
                while True:
                    writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    await writer.drain()
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
async def receiving(port: int | None = None) -> AsyncIterator[Receiver]:
    receiver = Receiver(port)
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()
