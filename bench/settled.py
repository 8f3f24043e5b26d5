"""A busy link's stats with the settled sums (ADR 0020): a first view, the first view
after midnight, and the views after, against summing every row, SQLite and PostgreSQL.

    python -m bench.settled [--requests 20] [--rounds 3] [--backends sqlite,postgresql]
                            [--no-record]

Each backend gets a fresh database seeded as bench.web_pages seeds it (bench/stats_seed.py:
the busy link "hot", 1,000,000 clicks over 90 days, about 440 breakdown rows a day).
The use case (`Stats.link`, what GET /api/v1/links/{code}/stats and the stats page
call) is timed in this process, for the last 30 and the last 89 days by day (89: so
that the range the day before is also inside the seeded days), four ways:

- summing every row: no settled sums (as before ADR 0020);
- a first view: nothing kept (what a process's first request sums);
- the day after: the clock a day earlier for one request, which keeps that range's
  sums, then back; the next request moves them a day (Summed.moved); the pair's CPU
  less a first view's;
- again: the same range once more (the sums kept, checked by their mark).

CPU per request: this process's (SQLite's work included) plus, on PostgreSQL, that of
the server processes serving the run's database, over each way's batch of requests;
median over the rounds.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench import harness
from bench.harness import cpu_model, source_state
from bench.search import principal
from bench.stats_seed import HOT_CODE, Generator, check, insert_day, make_links
from bench.web_pages import HOT_CLICKS, NOW, QUIET_LINKS, backends_cpu, vacuum
from kurz.analytics.service import Stats
from kurz.analytics.settled import SettledSums
from kurz.db import Database

DAY = 86_400.0
SPANS = (30, 89)
WAYS = ("summing every row", "a first view", "the day after", "again")


@dataclass
class Figures:
    cpu_ms: dict[tuple[int, str], list[float]] = field(default_factory=dict)


async def measure(url: str, opts: harness.BackendRun) -> Figures:
    db = Database.from_url(url)
    figures = Figures()
    try:
        owner, hot_id, quiet_ids = await make_links(db, QUIET_LINKS)
        for day in Generator(hot_id, HOT_CLICKS, quiet_ids, seed=7).days():
            await insert_day(db, day)
        await check(db, hot_id, HOT_CLICKS)
        if not db.is_sqlite:
            await vacuum(url)
        database = "" if db.is_sqlite else str(db.engine.url.database)
        now = [NOW]
        kept = Stats(db=db, clock=lambda: now[0])
        plain = Stats(db=db, clock=lambda: now[0], keep_settled=False)
        who = principal(owner.user_id)

        async def view(stats: Stats, days: int) -> None:
            span = stats.recent(days=days, interval="day")
            await stats.link(principal=who, code=HOT_CODE, span=span, top=10)

        async def batch(way: str, days: int) -> float:
            """CPU ms per view over `opts.requests` views the way `way` finds them.
            PostgreSQL's processes are counted in clock ticks (10 ms), so over the
            batch; the day after's batch holds its day-before views too, which the
            caller takes off."""
            stats = plain if way == "summing every row" else kept
            server, cpu = backends_cpu(database), time.process_time()
            for _ in range(opts.requests):
                if way != "again":
                    kept.settled = SettledSums()
                if way == "the day after":
                    now[0] = NOW - DAY
                    await view(kept, days)
                    now[0] = NOW
                await view(stats, days)
            used = time.process_time() - cpu + backends_cpu(database) - server
            return used / opts.requests * 1e3

        for days in SPANS:
            for way in WAYS:
                figures.cpu_ms[days, way] = []
        for _ in range(opts.rounds):
            for days in SPANS:
                measured = {way: await batch(way, days) for way in WAYS}
                # The day before's view was a first view of its range.
                measured["the day after"] -= measured["a first view"]
                for way, ms in measured.items():
                    figures.cpu_ms[days, way].append(ms)
            print(
                "  round: "
                + ", ".join(f"{k[0]}d {k[1]} {v[-1]:.2f}" for k, v in figures.cpu_ms.items()),
                flush=True,
            )
    finally:
        await db.dispose()
    return figures


async def run_backend(backend: str, opts: harness.BackendRun) -> Figures:
    async with harness.migrated_database(backend, "settled") as url:
        return await measure(url, opts)


def report(opts: harness.BackendRun, results: dict[str, Figures]) -> list[str]:
    backends = list(results)
    lines = [
        f"- machine: {os.cpu_count()} CPUs, {cpu_model()}, Python "
        f"{sys.version.split()[0]}; {source_state()}",
        f"- the busy link ({HOT_CLICKS:,} clicks over 90 days, bench/stats_seed.py); "
        f"`Stats.link` in process, by day; {opts.rounds} round(s) of {opts.requests} "
        "requests each way; CPU ms per request (with PostgreSQL's processes, over each "
        "batch), median over rounds",
        "",
        "| range | " + " | ".join(f"{way} ({b})" for b in backends for way in WAYS) + " |",
        "|---|" + "---:|" * (len(backends) * len(WAYS)),
    ]
    for days in SPANS:
        cells = [
            f"{statistics.median(results[b].cpu_ms[days, way]):.2f}"
            for b in backends
            for way in WAYS
        ]
        lines.append(f"| last {days} days | " + " | ".join(cells) + " |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    opts = harness.backend_run(
        argv, prog="python -m bench.settled", doc=__doc__, requests=20, unit="requests"
    )
    results = harness.each_backend(opts, run_backend)
    if results is None:
        return 1
    harness.publish(
        "A busy link's stats: the settled sums", report(opts, results),
        target="bench-settled", module="bench.settled", argv=argv, keep=not opts.no_record,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
