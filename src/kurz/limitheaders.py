"""The RateLimit fields on the response that follows a rate-limit check (ADR 0003)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kurz.limits import SCOPE_KEY
from kurz.ratelimit import carries_fields, with_fields


class RateLimitHeaders:
    """Adds the RateLimit fields a check left in the scope to the response that follows,
    if it carries them (`carries_fields`: a redirect only near the limit)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_fields(message: Message) -> None:
            if message["type"] == "http.response.start" and SCOPE_KEY in scope:
                decision = scope[SCOPE_KEY]
                if carries_fields(message["status"], decision):
                    message["headers"] = with_fields(message.get("headers", ()), decision)
            await send(message)

        await self.app(scope, receive, send_with_fields)
