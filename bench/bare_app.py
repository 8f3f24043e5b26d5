"""The baseline: the least an ASGI app can do to answer kurz's redirects.

It reads the same code -> URL map the benchmark created in kurz (a JSON file named
by BENCH_LINKS) at lifespan startup, and answers exactly as kurz's fast path does:
302 with Location and an empty body, or 404. The kurz/bare ratio is then the cost
of kurz itself under the same server.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from starlette.types import Receive, Scope, Send

_EMPTY = (b"content-length", b"0")
_NOT_FOUND: dict[str, Any] = {"type": "http.response.start", "status": 404, "headers": [_EMPTY]}
_BODY: dict[str, Any] = {"type": "http.response.body", "body": b""}
_targets: dict[str, list[tuple[bytes, bytes]]] = {}


# With BENCH_FIELDS=1, every redirect also carries two fixed RateLimit fields of the
# size kurz sends: what the fields cost the server (and wrk), without any check.
_FIELDS = [
    (b"ratelimit-policy", b'"redirect";q=10000;w=1'),
    (b"ratelimit", b'"redirect";r=999999999;t=1'),
]


def _load() -> None:
    links: dict[str, str] = json.loads(Path(os.environ["BENCH_LINKS"]).read_text())
    extra = _FIELDS if os.environ.get("BENCH_FIELDS") == "1" else []
    _targets.update(
        {code: [(b"location", url.encode()), _EMPTY, *extra] for code, url in links.items()}
    )


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                _load()
            except (KeyError, OSError, ValueError) as exc:
                await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    headers = _targets.get(scope["path"][1:])
    if headers is None:
        await send(_NOT_FOUND)
    else:
        await send({"type": "http.response.start", "status": 302, "headers": headers})
    await send(_BODY)
