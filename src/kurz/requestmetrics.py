"""Request counts and latencies per route, as plain ints, for kurz.metrics to read.

Middleware inside FastAPI's stack: the app's redirect fast path (kurz.app) answers
before it, so a cached redirect never reaches it. A request costs two clock reads,
one dict update and one bucket found by bisection; nothing of prometheus_client's.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Upper bounds in seconds, as Prometheus's client libraries default to.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


@dataclass(slots=True)
class Latencies:
    """One route's histogram: counts per bucket (the last one past every bound)."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0


@dataclass(slots=True)
class RouteMetrics:
    """Requests by (route, method, status), and latencies by route."""

    requests: dict[tuple[str, str, int], int] = field(default_factory=dict)
    latencies: dict[str, Latencies] = field(default_factory=dict)

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        latencies = self.latencies.get(route)
        if latencies is None:
            latencies = self.latencies[route] = Latencies()
        latencies.counts[bisect_left(BUCKETS, seconds)] += 1
        latencies.total += seconds


class CountRequests:
    """ASGI middleware: each HTTP request into `metrics`, by its route's template."""

    def __init__(self, app: ASGIApp, *, metrics: RouteMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, receive, sent)
        finally:
            route = scope.get("route")
            # The router leaves the route it matched in the scope; none: no route did.
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.record(template, scope["method"], status, time.perf_counter() - start)
