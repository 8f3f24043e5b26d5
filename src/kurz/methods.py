"""Methods per path: HEAD wherever GET is, and a 405 whose Allow names every method.

Starlette answers a wrong method with the methods of the first route whose path
matched, one of several when a path has a route per method (`PUT /api/v1/links/x`
gave `Allow: GET`), and FastAPI's routes answer HEAD only where it is declared, so
`HEAD /healthz` fell through to `HEAD /{code}`. This layer groups the routes by path
and settles the method before the router runs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kurz.errors import Problem, not_found
from kurz.httperrors import response

_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass(frozen=True, slots=True)
class Resource:
    """One path of the app and the methods its routes answer."""

    path: re.Pattern[str]
    methods: frozenset[str]

    def answers(self, method: str) -> bool:
        return method in self.methods or (method == "HEAD" and "GET" in self.methods)


def resources(routes: Sequence[BaseRoute]) -> list[Resource]:
    """The routes grouped by path template, in the order the router tries them."""
    grouped: dict[str, tuple[re.Pattern[str], set[str]]] = {}
    for route in iter_route_contexts(routes):
        if route.methods is None or route.path_format is None:
            continue  # not an HTTP route
        grouped.setdefault(route.path_format, (route.path_regex, set()))[1].update(route.methods)
    return [Resource(regex, frozenset(methods)) for regex, methods in grouped.values()]


def allow_header(methods: set[str]) -> str:
    if "GET" in methods:
        methods = methods | {"HEAD"}
    ordered = [m for m in _ORDER if m in methods] + sorted(methods.difference(_ORDER))
    return ", ".join(ordered)


class MethodRouting:
    """ASGI middleware in front of the router (it reads the router's routes)."""

    def __init__(self, app: ASGIApp, *, router: Router) -> None:
        self.app = app
        self.router = router
        # Built on the first request, once every route has been added.
        self._resources: list[Resource] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._resources is None:
            self._resources = resources(self.router.routes)
        path: str = scope["path"]
        method: str = scope["method"]
        allowed: set[str] = set()
        for resource in self._resources:
            if resource.path.match(path) is None:
                continue
            if method in resource.methods:
                await self.app(scope, receive, send)
                return
            if resource.answers(method):
                # A copy: the server reads the scope's method to send no body for HEAD.
                await self.app(dict(scope, method="GET"), receive, _headers_only(send))
                return
            # The first path that matches owns it: POST /healthz is no short link's form.
            allowed = set(resource.methods)
            break
        if allowed:
            problem = Problem(
                405,
                "method-not-allowed",
                "Method Not Allowed",
                f"This path answers {allow_header(allowed)}, not {method}.",
                headers={"Allow": allow_header(allowed)},
            )
        elif path != "/" and self._known(path.rstrip("/")):
            # No redirect: one would have to be built from the client's Host header.
            problem = not_found(f"kurz's paths end without a slash: {path.rstrip('/')}")
        else:
            await self.app(scope, receive, send)  # the router's 404
            return
        await response(problem, path)(scope, receive, send)

    def _known(self, path: str) -> bool:
        return any(resource.path.match(path) for resource in self._resources or ())


def _headers_only(send: Send) -> Send:
    """GET's answer with its body left out, as HEAD asks (its headers, length included)."""

    async def send_head(message: Message) -> None:
        if message["type"] == "http.response.body":
            if message.get("more_body", False):
                return
            message = {"type": "http.response.body", "body": b""}
        await send(message)

    return send_head
