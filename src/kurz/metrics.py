"""GET /metrics: this process's counters, in Prometheus's text format, for keys with
`metrics:read`.

Per process, as Prometheus expects: it scrapes every kurz process and adds them up.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from kurz.analytics.pipeline import Analytics
from kurz.auth.views import MetricsRead
from kurz.deps import part
from kurz.links.cache import Targets
from kurz.openapi import AUTHENTICATED, answer, needs_scope, responses

router = APIRouter(tags=["health"])

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def _metric(name: str, kind: str, help_text: str, value: int) -> str:
    # Integers in full: "%g" would print 1,234,567 as 1.23457e+06.
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n{name} {value}\n"


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
async def metrics(
    _principal: MetricsRead,
    analytics: Annotated[Analytics | None, part("analytics")],
    targets: Annotated[Targets, part("targets")],
) -> PlainTextResponse:
    lines: list[str] = []
    if analytics is not None:
        queue, drainer = analytics.queue, analytics.drainer
        lines += [
            _metric(
                "kurz_clicks_queued_total", "counter", "Clicks queued by redirects.", queue.accepted
            ),
            _metric(
                "kurz_clicks_dropped_total",
                "counter",
                "Clicks dropped because the queue was full (KURZ_ANALYTICS_QUEUE_SIZE).",
                queue.dropped,
            ),
            _metric(
                "kurz_clicks_backlog",
                "gauge",
                "Clicks queued and not yet written.",
                len(queue),
            ),
            _metric(
                "kurz_clicks_written_total",
                "counter",
                "Clicks written to the database, or to the stream when scaled out.",
                drainer.written,
            ),
            _metric(
                "kurz_clicks_write_failures_total",
                "counter",
                "Batch writes that failed and were tried again.",
                drainer.failures,
            ),
        ]
        if analytics.journal is not None and analytics.replayer is not None:
            lines += [
                _metric(
                    "kurz_clicks_undurable_total",
                    "counter",
                    "Clicks answered without being journaled (no room for the click journal):"
                    " lost if this process dies before writing them.",
                    analytics.journal.undurable,
                ),
                _metric(
                    "kurz_clicks_replayed_total",
                    "counter",
                    "Clicks written from the journals of processes that died.",
                    analytics.replayer.replayed,
                ),
            ]
        consumer = analytics.consumer
        if consumer is not None:
            lines.append(
                _metric(
                    "kurz_clicks_consumed_total",
                    "counter",
                    "Clicks this worker recorded from the stream.",
                    consumer.recorded,
                )
            )
            lines.append(
                _metric(
                    "kurz_click_batches_claimed_total",
                    "counter",
                    "Stream entries this worker took over from a consumer that stopped.",
                    consumer.claimed,
                )
            )
    bus = targets.cache.bus
    if bus is not None:
        lines += [
            _metric(
                "kurz_cache_invalidations_sent_total",
                "counter",
                "Invalidations published, counted once per cache node that took one.",
                bus.sent,
            ),
            _metric(
                "kurz_cache_invalidations_heard_total",
                "counter",
                "Invalidations heard and dropped from L1, counted once per node heard on.",
                bus.heard,
            ),
            _metric(
                "kurz_cache_subscriptions",
                "gauge",
                "Cache nodes whose invalidation subscription is up.",
                bus.subscriptions,
            ),
        ]
    return PlainTextResponse("".join(lines), media_type=PROMETHEUS_TEXT)
