"""CORS for /api/ only: browser tools on KURZ_CORS_ORIGINS may call the API with a key.

Never with credentials: a cookie (a session) must not travel cross-origin, so no
answer says Access-Control-Allow-Credentials, and a browser sends none. Redirects
are answered before any middleware and need no CORS: a browser follows them.

Starlette's CORSMiddleware covers every path, and answers a preflight from an origin
it refuses with a plain-text 400 that still lists the allowed methods and headers;
here another origin's requests pass through untouched, with no CORS field at all.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "/api/"
METHODS = "GET, POST, PATCH, DELETE"
ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, If-Match, X-CSRF-Token"
EXPOSE_HEADERS = "ETag, Location, RateLimit, RateLimit-Policy, Retry-After, Idempotent-Replayed"
# How long a browser may reuse a preflight's answer (Chromium keeps at most 2 hours).
MAX_AGE = "600"


class ApiCors:
    """ASGI middleware: answers preflights from `origins` to /api/, and lets their
    scripts read the answers to their requests."""

    def __init__(self, app: ASGIApp, *, origins: Collection[str]) -> None:
        self.app = app
        # Schemes and hosts are case-insensitive; a browser sends them in lower case.
        self.origins = frozenset(origin.lower() for origin in origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None or origin.lower() not in self.origins:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await _preflight(origin, send)
            return

        async def send_allowed(message: Message) -> None:
            if message["type"] == "http.response.start":
                fields = MutableHeaders(scope=message)
                fields["Access-Control-Allow-Origin"] = origin
                fields["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
                fields.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, send_allowed)


async def _preflight(origin: str, send: Send) -> None:
    """The answer to a preflight: what any /api/ request may use. The browser checks
    the request against it; the route answers the request itself as it would anyone's."""
    fields = [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-allow-methods", METHODS.encode()),
        (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
        (b"access-control-max-age", MAX_AGE.encode()),
        (b"vary", b"Origin"),
    ]
    await send({"type": "http.response.start", "status": 204, "headers": fields})
    await send({"type": "http.response.body", "body": b""})
