"""GET /metrics: this process's counters, in Prometheus's text format, for keys with
`metrics:read`; and the same for `kurz worker --metrics-port`.

Per process, as Prometheus expects: it scrapes every kurz process and adds them up.
What each process counts are plain ints on its own parts (the redirect path never
calls prometheus_client); a collector reads them when scraped. docs/metrics.md lists
every metric.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from kurz import limits
from kurz.auth.views import MetricsRead
from kurz.openapi import AUTHENTICATED, answer, needs_scope, responses
from kurz.requestmetrics import BUCKETS, RouteMetrics

if TYPE_CHECKING:
    from kurz.bootstrap import Parts
    from kurz.jobs import Worker

log = logging.getLogger("kurz.metrics")

router = APIRouter(tags=["health"])

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(slots=True)
class JobsSnapshot:
    """The job table as one scrape saw it: two aggregate queries, asked before rendering."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    oldest_due: float | None = None


async def read_jobs(parts: Parts) -> JobsSnapshot:
    counts = await parts.jobs.counts()
    oldest = await parts.jobs.oldest_due_age()
    return JobsSnapshot({(queue, state.value): n for (queue, state), n in counts.items()}, oldest)


@dataclass(eq=False)
class KurzCollector(Collector):
    """kurz's own counters, read from `parts` (and the web app's or worker's) when scraped."""

    parts: Parts
    requests: RouteMetrics | None = None
    worker: Worker | None = None
    # Set by the scrape just before rendering: collect() cannot await a query.
    jobs: JobsSnapshot = field(default_factory=JobsSnapshot)

    def collect(self) -> Iterator[Metric]:
        yield from self._redirects()
        yield from self._cache()
        yield from self._limits()
        yield from self._jobs()
        yield from self._clicks()
        if self.requests is not None:
            yield from _requests(self.requests)
        if self.worker is not None:
            yield from _worker(self.worker)

    def _redirects(self) -> Iterator[Metric]:
        visits = self.parts.visits
        redirects = CounterMetricFamily(
            "kurz_redirects",
            "Visits of a short link by outcome, and by path: the fast path answers from L1"
            " without awaiting; the full path looks through L1, L2 and the database.",
            labels=["outcome", "path"],
        )
        redirects.add_metric(["redirected", "fast"], visits.fast)
        redirects.add_metric(["limited", "fast"], visits.fast_limited)
        for outcome, n in visits.outcomes.items():
            redirects.add_metric([outcome, "full"], n)
        yield redirects

    def _cache(self) -> Iterator[Metric]:
        targets = self.parts.targets
        cache, l1 = targets.cache, targets.l1
        lookups = CounterMetricFamily(
            "kurz_cache_requests",
            "Link lookups by cache tier and result; a miss goes on to the next tier"
            " (database: a hit found the link, a miss found none).",
            labels=["tier", "result"],
        )
        for tier, hits, misses in (
            ("l1", l1.hits, l1.misses),
            ("l2", cache.l2_hits, cache.l2_misses),
            ("database", cache.loads_found, cache.loads_missing),
        ):
            lookups.add_metric([tier, "hit"], hits)
            lookups.add_metric([tier, "miss"], misses)
        yield lookups
        yield GaugeMetricFamily("kurz_cache_l1_entries", "Entries in this process's L1.", len(l1))
        bus = cache.bus
        if bus is not None:
            yield CounterMetricFamily(
                "kurz_cache_invalidations_sent",
                "Invalidations published, counted once per cache node that took one.",
                bus.sent,
            )
            yield CounterMetricFamily(
                "kurz_cache_invalidations_heard",
                "Invalidations heard and dropped from L1, counted once per node heard on.",
                bus.heard,
            )
            yield GaugeMetricFamily(
                "kurz_cache_subscriptions",
                "Cache nodes whose invalidation subscription is up.",
                bus.subscriptions,
            )

    def _limits(self) -> Iterator[Metric]:
        refusals = CounterMetricFamily(
            "kurz_ratelimit_refusals",
            "Requests refused by a rate limit, by policy (KURZ_RATELIMIT_*).",
            labels=["policy"],
        )
        for policy, n in sorted(limits.REFUSED.items()):
            refusals.add_metric([policy], n)
        yield refusals

    def _jobs(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "kurz_jobs", "Jobs in the job table by queue and state.", labels=["queue", "state"]
        )
        for (queue, state), n in sorted(self.jobs.counts.items()):
            jobs.add_metric([queue, state], n)
        yield jobs
        yield GaugeMetricFamily(
            "kurz_jobs_oldest_due_seconds",
            "How long the longest-waiting due job has been due (0: none is).",
            self.jobs.oldest_due or 0.0,
        )

    def _clicks(self) -> Iterator[Metric]:
        analytics = self.parts.analytics
        if analytics is None:
            return
        queue, drainer = analytics.queue, analytics.drainer
        yield CounterMetricFamily(
            "kurz_clicks_queued", "Clicks queued by redirects.", queue.accepted
        )
        yield CounterMetricFamily(
            "kurz_clicks_dropped",
            "Clicks dropped because the queue was full (KURZ_ANALYTICS_QUEUE_SIZE).",
            queue.dropped,
        )
        yield GaugeMetricFamily(
            "kurz_clicks_backlog", "Clicks queued and not yet written.", len(queue)
        )
        yield CounterMetricFamily(
            "kurz_clicks_written",
            "Clicks written to the database, or to the stream when scaled out.",
            drainer.written,
        )
        yield CounterMetricFamily(
            "kurz_clicks_write_failures",
            "Batch writes that failed and were tried again.",
            drainer.failures,
        )
        if analytics.journal is not None and analytics.replayer is not None:
            yield CounterMetricFamily(
                "kurz_clicks_undurable",
                "Clicks answered without being journaled (no room for the click journal):"
                " lost if this process dies before writing them.",
                analytics.journal.undurable,
            )
            yield CounterMetricFamily(
                "kurz_clicks_replayed",
                "Clicks written from the journals of processes that died.",
                analytics.replayer.replayed,
            )
        consumer = analytics.consumer
        if consumer is not None:
            yield CounterMetricFamily(
                "kurz_clicks_consumed",
                "Clicks this worker recorded from the stream.",
                consumer.recorded,
            )
            yield CounterMetricFamily(
                "kurz_click_batches_claimed",
                "Stream entries this worker took over from a consumer that stopped.",
                consumer.claimed,
            )


def _requests(metrics: RouteMetrics) -> Iterator[Metric]:
    counts = CounterMetricFamily(
        "kurz_http_requests",
        "HTTP requests past the redirect fast path, by route template, method and status.",
        labels=["route", "method", "status"],
    )
    for (route, method, status), n in sorted(metrics.requests.items()):
        counts.add_metric([route, method, str(status)], n)
    yield counts
    latencies = HistogramMetricFamily(
        "kurz_http_request_duration_seconds",
        "How long requests past the redirect fast path took, by route template.",
        labels=["route"],
    )
    for route, histogram in sorted(metrics.latencies.items()):
        buckets: list[tuple[str, float]] = []
        seen = 0
        for bound, n in zip((*map(str, BUCKETS), "+Inf"), histogram.counts, strict=True):
            seen += n
            buckets.append((bound, seen))
        latencies.add_metric([route], buckets, histogram.total)
    yield latencies


def _worker(worker: Worker) -> Iterator[Metric]:
    stats = worker.stats
    runs = CounterMetricFamily(
        "kurz_worker_jobs",
        "Job runs this worker ended, by result (failed counts timed_out and dead too).",
        labels=["result"],
    )
    for result in ("done", "failed", "timed_out", "dead", "lost", "released"):
        runs.add_metric([result], getattr(stats, result))
    yield runs
    yield GaugeMetricFamily("kurz_worker_running", "Jobs this worker is running.", worker.running)


class Scrape:
    """A registry over one process's collector, with the process's own metrics."""

    def __init__(self, collector: KurzCollector) -> None:
        self.collector = collector
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        ProcessCollector(registry=self.registry)

    async def render(self) -> bytes:
        self.collector.jobs = await read_jobs(self.collector.parts)
        return generate_latest(self.registry)


@router.get(
    "/metrics",
    operation_id="getMetrics",
    summary="This process's counters (Prometheus text format; the `metrics:read` scope)",
    response_class=PlainTextResponse,
    responses=responses(
        {200: answer("The counters")},
        needs_scope("metrics:read"),
        AUTHENTICATED,
        limited=True,
    ),
)
async def metrics(_principal: MetricsRead, request: Request) -> PlainTextResponse:
    scrape: Scrape = request.app.state.scrape
    return PlainTextResponse(await scrape.render(), media_type=PROMETHEUS_TEXT)


async def serve(render: Callable[[], Awaitable[bytes]], *, host: str, port: int) -> asyncio.Server:
    """A plain HTTP server answering GET /metrics with `render()`, in this event loop (a
    worker has no web app): every other path is a 404, every other method a 405."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, path, *_ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            if path.split("?", 1)[0] != "/metrics":
                status, body, kind = "404 Not Found", b"not found\n", "text/plain"
            elif method not in ("GET", "HEAD"):
                status, body, kind = "405 Method Not Allowed", b"GET only\n", "text/plain"
            else:
                status, body, kind = "200 OK", await render(), PROMETHEUS_TEXT
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode("latin-1")
            )
            if method != "HEAD":
                writer.write(body)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # not HTTP, or cut short: nothing to answer
        except Exception:
            log.exception("answering a metrics scrape failed")
        finally:
            writer.close()

    return await asyncio.start_server(answer, host, port)
