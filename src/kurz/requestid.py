"""X-Request-ID: taken from a trusted proxy or made here, echoed on the response, and
on every log line written while the request is answered (kurz.logs)."""

from __future__ import annotations

import re
import secrets
from ipaddress import IPv4Network, IPv6Network

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kurz.limits import within
from kurz.logs import REQUEST_ID

HEADER = b"x-request-id"
# Visible ASCII, as proxies' ids are (UUIDs, AWS trace ids): nothing that could end or
# forge a log line or a header, and not so long that it could flood either.
_VALID = re.compile(rb"[!-~]{1,128}")


def new_id() -> str:
    return secrets.token_hex(8)


class RequestIds:
    """Gives each HTTP request its id; outermost, so that a 500 carries it too."""

    def __init__(self, app: ASGIApp, trusted: tuple[IPv4Network | IPv6Network, ...]) -> None:
        self.app = app
        self._trusted = trusted

    def taken(self, scope: Scope) -> str | None:
        """The proxy's id, if the peer is a trusted proxy and its id is well-formed."""
        client = scope.get("client")
        if not self._trusted or not client or not within(client[0], self._trusted):
            return None
        for name, value in scope["headers"]:
            if name == HEADER:
                return value.decode("ascii") if _VALID.fullmatch(value) else None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self.taken(scope) or new_id()
        echoed = (HEADER, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        token = REQUEST_ID.set(request_id)
        await self.app(scope, receive, send_with_id)
        # Not in a `finally`: the server logs an exception that escapes the app after
        # the app has returned, and that line belongs to the request too. The server
        # runs each request in a task of its own, whose context ends with it.
        REQUEST_ID.reset(token)
