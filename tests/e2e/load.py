"""Many redirects, fast: HTTP/1.1 keep-alive connections written on asyncio streams.

httpx costs about a millisecond of client CPU per request here (its pool and anyio,
not kurz), twenty times what kurz spends answering: 50,000 redirects took a minute
through httpx and take a few seconds this way. It speaks only what the tests need:
requests without a body, answers with a Content-Length, never chunked.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
GOOGLEBOT = "Googlebot/2.1 (+http://www.google.com/bot.html)"


@dataclass
class Load:
    """Requests to send, each (method, user agent), and the answers they got."""

    requests: list[tuple[str, str]]
    # (method, user agent, status) -> how many.
    answers: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    done: int = 0
    # Set once that many answers have come.
    marks: dict[int, asyncio.Event] = field(default_factory=dict)

    @classmethod
    def of(cls, *, people: int, bots: int = 0, heads: int = 0) -> Load:
        """`people` GETs from a browser, with `bots` Googlebot GETs and `heads` HEADs
        from a browser spread among them."""
        others = [("GET", GOOGLEBOT)] * bots + [("HEAD", BROWSER)] * heads
        every = max(people // max(len(others), 1), 1)
        requests: list[tuple[str, str]] = []
        for i in range(people):
            if others and i % every == 0:
                requests.append(others.pop())
            requests.append(("GET", BROWSER))
        return cls(requests + others)


async def send(load: Load, url: str, *, connections: int = 48) -> None:
    """Every request of `load` to `url`, over `connections` connections at once;
    redirects are answers, not followed."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    pending = iter(load.requests)

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            for method, agent in pending:
                writer.write(
                    f"{method} {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                    f"User-Agent: {agent}\r\n\r\n".encode("latin-1")
                )
                status = await _answer(reader, method)
                load.answers[method, agent, status] += 1
                load.done += 1
                if (mark := load.marks.get(load.done)) is not None:
                    mark.set()
        finally:
            writer.close()
            await writer.wait_closed()

    await asyncio.gather(*(connection() for _ in range(connections)))


async def _answer(reader: asyncio.StreamReader, method: str) -> int:
    """Read one answer, its body included; its status."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status = int(status_line.split()[1])
    length = 0
    while (line := await reader.readline()) != b"\r\n":
        if not line:
            raise ConnectionError("the server closed the connection mid-answer")
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            raise ValueError(f"unexpected Transfer-Encoding: {value.strip()!r}")
    # An answer to a HEAD has a Content-Length but no body.
    if length and method != "HEAD":
        await reader.readexactly(length)
    return status
