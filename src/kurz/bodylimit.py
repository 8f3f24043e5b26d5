"""A cap on request body size, answered with problem+json."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kurz.errors import Problem
from kurz.httperrors import response


def _too_large(limit: int) -> Problem:
    return Problem(
        413, "payload-too-large", "Payload Too Large", f"The body exceeds {limit} bytes."
    )


class BodyLimit:
    """Refuses a declared oversize body at once, and stops a streamed one at the limit."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, paths: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Paths with a limit of their own (a batch of links), by path.
        self.paths = dict(paths or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.paths.get(scope["path"], self.max_bytes)
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > max_bytes:
                    status = 413 if value.isdigit() else 400
                    problem = (
                        _too_large(max_bytes)
                        if status == 413
                        else Problem(
                            400, "bad-request", "Bad Request", "Content-Length is not a number."
                        )
                    )
                    await response(problem, scope["path"])(scope, receive, send)
                    return
                break

        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > max_bytes:
                # An HTTPException passes through FastAPI's body parsing untouched,
                # so it reaches kurz's problem+json handler.
                raise HTTPException(413, _too_large(max_bytes).detail)
            return message

        await self.app(scope, limited, send)
