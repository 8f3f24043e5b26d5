"""Webhook deliveries on a simulated clock: what a change pays per listening endpoint,
when each attempt of a failing delivery runs, and which receiver outages a delivery
survives, with kurz's own code and a seeded random source.

    python -m bench.webhooks [--deliveries 1000] [--seed 25] [--no-record]

End to end (kurz as `kurz serve` builds it, on a SQLite file, on a clock that moves
only when the bench says so; a receiver of its own on 127.0.0.1):

- per change: 0, 1, 5 and 20 webhooks registered, LINKS_PER_STEP links made through
  the API; the SQL statements each POST runs (counted at the driver), and the
  deliveries the worker then sends (each signature checked with the standardwebhooks
  package, as a receiver would);
- retries: one delivery to a receiver that answers 503 for OUTAGE_H hours; the worker
  runs what is due, the clock moves to the next attempt's run_at, and the receiver
  notes each attempt's time on that clock.

Simulated:

`--deliveries` deliveries fail together at time 0 (their receiver went down) and fail
every attempt while it stays down. The waits between attempts are drawn by the code
the worker calls after a failure (kurz.jobs.Worker._failed: `retries(job.attempts)`):

- the webhook kind's schedule, kurz.webhooks.scheduled.RetrySchedule: 15 s x 4^(n-1),
  capped at 8 h, +-20 %, ATTEMPTS (9) attempts (ADR 0021);
- for comparison, the worker's default for every other kind, kurz.jobs.worker.Backoff:
  full jitter, uniform in [0, min(1 h, 1 s x 2^(n-1))], the store's default 5 attempts
  (ADR 0008).

Time is simulated (no clock, no sleep, no network): an attempt's time is the previous
attempt's plus the drawn wait. The worker's poll interval and the attempt's own duration
(up to KURZ_WEBHOOK_TIMEOUT) would add a few seconds each; they are left out. The same
seed gives the same numbers on every machine.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from collections.abc import Callable, Sequence

from bench import figures
from bench.harness import BenchError, publish
from bench.webhook_deliveries import LINKS_PER_STEP, Results
from bench.webhook_deliveries import run as end_to_end
from kurz.jobs.worker import Backoff
from kurz.webhooks.outbox import ATTEMPTS
from kurz.webhooks.scheduled import RetrySchedule

HOUR = 3_600.0
# The end-to-end delivery's receiver is down this long from its first attempt.
OUTAGE_H = 30
DEFAULT_ATTEMPTS = 5  # JobStore.enqueue's max_attempts
# Receiver outages, in seconds: 1 s to 30 h.
OUTAGES = (
    *(1, 2, 5, 10, 15, 20, 30, 60, 300, 900),
    *(h * 3_600 for h in (1, 4, 8, 12, 16, 18, 20, 22, 24, 26, 30)),
)
# Log-scale ticks for times in seconds.
TICKS = {1: "1 s", 10: "10 s", 60: "1 min", 600: "10 min", 3_600: "1 h", 28_800: "8 h",
         86_400: "1 day"}  # fmt: skip


def attempt_times(wait: Callable[[int], float], attempts: int) -> list[float]:
    """Seconds from the first attempt to each attempt, the first at 0."""
    times = [0.0]
    for n in range(1, attempts):
        times.append(times[-1] + wait(n))
    return times


def simulate(deliveries: int, seed: int) -> dict[str, list[list[float]]]:
    """Each schedule's attempt times for `deliveries` deliveries that fail every time."""
    rng = random.Random(seed)
    webhook = RetrySchedule(rng=rng.random)
    default = Backoff(rng=rng.random)
    return {
        "webhooks (RetrySchedule)": [attempt_times(webhook, ATTEMPTS) for _ in range(deliveries)],
        "other jobs (Backoff)": [
            attempt_times(default.delay, DEFAULT_ATTEMPTS) for _ in range(deliveries)
        ],
    }


def survived(runs: list[list[float]], outage: float) -> float:
    """The share of deliveries with an attempt after an outage of `outage` seconds
    that began at their first attempt: those the receiver finally gets."""
    return sum(1 for times in runs if times[-1] >= outage) / len(runs)


def hours(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < HOUR:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / HOUR:.2f} h"


def report_end_to_end(live: Results) -> list[str]:
    return [
        f"End to end (SQLite, simulated clock): {LINKS_PER_STEP} links made through the API "
        "per step, each a link.created event for every webhook registered",
        "",
        "| webhooks registered | SQL statements per POST /api/v1/links | deliveries sent "
        "| signatures verified |",
        "|---:|---:|---:|---:|",
        *(
            f"| {s.endpoints} | {s.statements_per_change:.1f} | {s.deliveries} | {s.verified} |"
            for s in live.steps
        ),
        "",
        f"One delivery through the worker to a receiver down for {OUTAGE_H} h: "
        f"{len(live.attempts)} attempts, then {live.final_state}",
        "",
        "| attempt | time after the first | answer |",
        "|---:|---:|---:|",
        *(
            f"| {n} | {hours(at)} | {status} |"
            for n, (at, status) in enumerate(live.attempts, start=1)
        ),
        "",
    ]


def report(runs: dict[str, list[list[float]]], deliveries: int, seed: int) -> list[str]:
    lines = [
        "Simulated (no kurz process, only its retry code):",
        f"- {deliveries:,} deliveries failing together at time 0, waits drawn by kurz's own "
        f"retry code (random.Random({seed})); simulated time, poll and attempt durations left out",
        "",
        "| attempt | " + " | ".join(f"{name}: median (min - max)" for name in runs) + " |",
        "|---:|" + "---:|" * len(runs),
    ]
    for n in range(ATTEMPTS):
        cells = []
        for times in runs.values():
            if n >= len(times[0]):
                cells.append("-")
                continue
            at = [t[n] for t in times]
            cells.append(f"{hours(statistics.median(at))} ({hours(min(at))} - {hours(max(at))})")
        lines.append(f"| {n + 1} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| receiver down for | " + " | ".join(f"delivered, {name}" for name in runs) + " |",
        "|---:|" + "---:|" * len(runs),
    ]
    for outage in OUTAGES:
        cells = [f"{survived(times, outage):.1%}" for times in runs.values()]
        lines.append(f"| {hours(outage)} | " + " | ".join(cells) + " |")
    return lines


def draw(runs: dict[str, list[list[float]]], deliveries: int, live: Results) -> None:
    fig, ax = figures.new(
        f"Retry times of {deliveries:,} failing deliveries, kurz's retry code (simulated)",
        "attempt",
        "time after the first attempt (log scale)",
    )
    for name, times in runs.items():
        xs = list(range(2, len(times[0]) + 1))
        at = [[max(t[n - 1], 0.1) for t in times] for n in xs]
        line = ax.plot(xs, [statistics.median(a) for a in at], marker="o", label=f"{name}, median")
        ax.fill_between(
            xs, [min(a) for a in at], [max(a) for a in at],
            color=line[0].get_color(), alpha=0.18, label=f"{name}, min to max",
        )  # fmt: skip
    ax.plot(
        range(2, len(live.attempts) + 1), [at for at, _ in live.attempts[1:]],
        linestyle="none", marker="x", color="black", markersize=7,
        label=f"one delivery end to end through the worker (receiver down {OUTAGE_H} h)",
    )  # fmt: skip
    ax.set_yscale("log")
    ax.set_ylim(0.1, 2 * 86_400)
    ax.set_yticks(list(TICKS), list(TICKS.values()))
    ax.minorticks_off()
    ax.set_xticks(range(2, ATTEMPTS + 1))
    ax.legend(fontsize=8, loc="upper left")
    figures.save(fig, "designs/figures/webhook-delivery-retries.svg")

    fig, ax = figures.new(
        f"Outages survived: {deliveries:,} deliveries failing from time 0 (simulated)",
        "receiver down for (log scale)",
        "deliveries finally delivered (%)",
    )
    for name, times in runs.items():
        ax.plot(
            OUTAGES, [survived(times, o) * 100 for o in OUTAGES],
            marker="o", markersize=3, label=name,
        )  # fmt: skip
    ax.set_xscale("log")
    ax.set_xticks(list(TICKS), list(TICKS.values()))
    ax.minorticks_off()
    ax.set_ylim(-2, 102)
    ax.legend(fontsize=8, loc="center left")
    figures.save(fig, "designs/figures/webhook-delivery-outages.svg")

    fig, ax = figures.new(
        f"What a change pays per webhook: POST /api/v1/links, SQLite, {LINKS_PER_STEP} links each",
        "webhooks registered that want link.created",
        "SQL statements per POST",
    )
    labels = [str(step.endpoints) for step in live.steps]
    bars = ax.bar(labels, [step.statements_per_change for step in live.steps], 0.6)
    ax.bar_label(
        bars, fontsize=8,
        labels=[f"{s.statements_per_change:.1f} ({s.verified}/{s.deliveries} delivered, verified)"
                for s in live.steps],
    )  # fmt: skip
    figures.save(fig, "designs/figures/webhook-delivery-statements.svg")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(
        prog="python -m bench.webhooks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--deliveries", type=int, default=1_000, help="failing deliveries")
    parser.add_argument("--seed", type=int, default=25, help="the random source's seed")
    parser.add_argument("--no-record", action="store_true", help="do not append to the docs")
    args = parser.parse_args(argv)
    if args.deliveries < 1:
        parser.error("--deliveries >= 1")
    runs = simulate(args.deliveries, args.seed)
    # RetrySchedule draws its jitter from the random module: seeded, the end-to-end
    # delivery's waits are the same on every run.
    random.seed(args.seed)
    try:
        live = end_to_end(OUTAGE_H * HOUR)
    except (BenchError, OSError) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    draw(runs, args.deliveries, live)
    lines = report_end_to_end(live) + report(runs, args.deliveries, args.seed)
    publish(
        "Webhooks: what a change pays, and the retry schedule", lines,
        target="bench-webhooks", module="bench.webhooks", argv=argv, keep=not args.no_record,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
