"""What recording a click costs the process that records it: CPU per click for
ClickStore.record, by batch size and traffic shape, on SQLite and PostgreSQL.

    python -m bench.record_cost [--clicks 40000] [--rounds 3] [--no-record]

The clicks are spread over 1,000 links of one user, like the redirect benchmark's:
each batch touches most of them, which is the worst case for the rollups (a row per
link, hour and breakdown value per batch). "one visitor" is wrk's traffic (one address, one
user agent); "all new" gives every click a visitor of its own, so every click adds
a row to both visitor sets. CPU is the process's (both threads: aiosqlite runs
SQLite in one of its own); PostgreSQL's own CPU is not in it.

Every run draws docs/designs/figures/click-pipeline-record-cost.svg from what it measured.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench import figures
from bench.harness import BenchError, publish
from bench.stats_seed import make_links
from kurz.analytics.events import ClickEvent, DailySalt, from_request
from kurz.analytics.queue import batch_id
from kurz.analytics.store import ClickStore
from kurz.db import Database
from kurz.db.migrate import upgrade

LINKS = 1_000
BATCHES = (500, 2_000, 10_000)
SHAPES = ("one visitor", "all new")
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36"
)
PSQL = ["psql", "-qh", "127.0.0.1", "-U", "postgres", "-d", "test", "-c"]


def clicks(n: int, *, shape: str, salt: DailySalt, start: float) -> list[ClickEvent]:
    return [
        from_request(
            link_id=1 + i % LINKS,
            at=start + i * 0.001,
            client_ip=f"10.{i // 65_536 % 256}.{i // 256 % 256}.{i % 256}"
            if shape == "all new"
            else "10.0.0.1",
            user_agent=CHROME,
            referer="https://news.example/" if i % 3 else None,
            salt=salt,
        )
        for i in range(n)
    ]


async def owned_links(db: Database) -> None:
    """The LINKS links the clicks are for (ids 1 to LINKS, in a new database), of one
    user: the store sums each batch by the links' owner, which it reads from links."""
    _, hot_id, quiet_ids = await make_links(db, LINKS - 1)
    if sorted([hot_id, *quiet_ids]) != list(range(1, LINKS + 1)):
        raise BenchError("the links were not given the ids 1 to 1,000: not a new database?")


async def measure(url: str, events: list[ClickEvent], batch: int) -> float:
    """CPU microseconds per click, recording `events` in batches of `batch`."""
    db = Database.from_url(url)
    try:
        await upgrade(db)
        await owned_links(db)
        store = ClickStore(db)
        began = time.process_time()
        for start in range(0, len(events), batch):
            await store.record([(batch_id(), events[start : start + batch])])
        return (time.process_time() - began) / len(events) * 1e6
    finally:
        await db.dispose()


def postgres_database(name: str) -> str:
    subprocess.run([*PSQL, f"DROP DATABASE IF EXISTS {name}"], check=True)
    subprocess.run([*PSQL, f"CREATE DATABASE {name}"], check=True)
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def draw(results: dict[tuple[str, int, str], list[float]], clicks_per_run: int) -> None:
    """CPU per click against batch size, a line per database and traffic shape."""
    fig, ax = figures.new(
        f"Recording a click (ClickStore.record): CPU per click by batch size, "
        f"{clicks_per_run:,} clicks",
        "clicks per batch (log scale)",
        "CPU µs per click (kurz's process only)",
    )
    for backend in ("sqlite", "postgresql"):
        for shape in SHAPES:
            points = [(b, statistics.median(results[backend, b, shape])) for b in BATCHES
                      if (backend, b, shape) in results]  # fmt: skip
            ax.plot(
                [b for b, _ in points], [us for _, us in points],
                marker="o", linestyle="-" if shape == "one visitor" else "--",
                label=f"{'SQLite' if backend == 'sqlite' else 'PostgreSQL'}, {shape}",
            )  # fmt: skip
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(list(BATCHES), [f"{b:,}" for b in BATCHES])
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    figures.save(fig, "designs/figures/click-pipeline-record-cost.svg")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.record_cost", description=__doc__)
    parser.add_argument("--clicks", type=int, default=40_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    salt = DailySalt()
    results: dict[tuple[str, int, str], list[float]] = {}
    for round_ in range(args.rounds):
        for backend in ("sqlite", "postgresql"):
            for batch in BATCHES:
                for shape in SHAPES:
                    events = clicks(args.clicks, shape=shape, salt=salt, start=time.time())
                    with tempfile.TemporaryDirectory(prefix="kurz-record-") as tmp:
                        url = (
                            f"sqlite:///{Path(tmp) / 'kurz.db'}"
                            if backend == "sqlite"
                            else postgres_database("kurz_bench_record")
                        )
                        us = asyncio.run(measure(url, events, batch))
                    results.setdefault((backend, batch, shape), []).append(us)
                    print(
                        f"round {round_ + 1}/{args.rounds}  {backend:10} batch {batch:5}  "
                        f"{shape:11}  {us:6.1f} us CPU/click"
                    )
    subprocess.run([*PSQL, "DROP DATABASE IF EXISTS kurz_bench_record"], check=True)
    lines = [
        f"{args.clicks:,} clicks over {LINKS:,} links per run; median of {args.rounds} rounds.",
        "",
        "| database | batch | visitors | CPU per click |",
        "|---|---:|---|---:|",
        *(
            f"| {backend} | {batch:,} | {shape} | {statistics.median(values):.1f} µs |"
            for (backend, batch, shape), values in results.items()
        ),
    ]
    draw(results, args.clicks)
    publish(
        "Clicks: recording cost per click",
        lines,
        target="bench-record",
        module="bench.record_cost",
        argv=sys.argv[1:] if argv is None else argv,
        keep=not args.no_record,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
