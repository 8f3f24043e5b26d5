"""GET /metrics: this process's counters, in Prometheus's text format, for admin keys.

Per process, as Prometheus expects: it scrapes every kurz process and adds them up.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from kurz.auth.views import PrincipalDep
from kurz.errors import AUTH_RESPONSES, Problem, problem_responses
from kurz.state import StateDep

router = APIRouter(tags=["health"])

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def _metric(name: str, kind: str, help_text: str, value: int) -> str:
    # Integers in full: "%g" would print 1,234,567 as 1.23457e+06.
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n{name} {value}\n"


@router.get(
    "/metrics",
    summary="This process's counters (Prometheus text format; admin keys only)",
    response_class=PlainTextResponse,
    responses={**AUTH_RESPONSES, **problem_responses({403: "The key is not an admin key"})},
)
async def metrics(principal: PrincipalDep, state: StateDep) -> PlainTextResponse:
    if not principal.is_admin:
        raise Problem(403, "forbidden", "Forbidden", "Only an admin key may read the metrics.")
    lines: list[str] = []
    analytics = state.analytics
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
    return PlainTextResponse("".join(lines), media_type=PROMETHEUS_TEXT)
