"""Bulk create against one by one: links per second, in one run.

    python -m bench.batch [--requests 10000] [--rounds 3] [--backends sqlite,postgresql]
                          [--chunks 25,100,250,1000] [--no-record]

Each backend gets a fresh database (a SQLite file; a PostgreSQL database created for
the run on KURZ_BENCH_PG, default the test server, and dropped after). kurz runs in
this process under httpx's ASGI transport, so the figures are kurz's own work plus the
database's, with no HTTP server or network in between. Per round, in alternating
order, `--requests` links (each a URL and two tags) are made:

- one by one: sequential POST /api/v1/links;
- in batches: sequential POST /api/v1/links/batch of 1,000 links each, written in
  chunks of kurz.links.batch.CHUNK links per transaction;
- keyed batches: the same, each with an Idempotency-Key (whose record is written with
  every chunk).

batch/one is the ratio of links per second within a round, median over rounds (the
issue asks for at least 20). SQL statements per link are counted on the engine: they
do not vary with noise. Then, once per round, batches with each of `--chunks` links
per transaction: what a chunk's size costs, and how long one chunk's transaction
takes (the median and the slowest), which is how long it holds SQLite's one write
lock and keeps every other writer waiting.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from bench import harness
from bench.harness import BenchError, cpu_model, source_state
from bench.idempotency import Statements
from kurz.app import create_app
from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate
from kurz.bootstrap import build
from kurz.clock import system_clock, utcnow
from kurz.config import Settings
from kurz.db import READ_COMMITTED, Database
from kurz.idempotency import Idempotency, Steps
from kurz.idempotency.steps import Entries, Run, Step
from kurz.links.batch import CHUNK
from kurz.links.models import MAX_BATCH

MODES = ("one by one", "batches", "keyed batches")
GOAL = 20.0  # batches make links at least 20 times as fast as one by one


@dataclass
class Figures:
    rates: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MODES})
    statements: dict[str, float] = field(default_factory=dict)
    # Links per second, by links per transaction.
    chunked: dict[int, list[float]] = field(default_factory=dict)
    # Seconds each chunk's transaction took, by links per transaction.
    held: dict[int, list[float]] = field(default_factory=dict)

    def ratio(self, mode: str = "batches") -> float:
        pairs = zip(self.rates[mode], self.rates["one by one"], strict=True)
        return statistics.median(b / o for b, o in pairs)


class TimedSteps(Steps):
    """kurz's steps, each one's time kept (a step is one transaction)."""

    def __init__(self, idempotency: Idempotency) -> None:
        super().__init__(idempotency)
        self.seconds: list[float] = []

    async def step(
        self, run: Run, operation: Step, *, answer: Callable[[Entries], str] | None = None
    ) -> Entries:
        start = time.perf_counter()
        try:
            return await super().step(run, operation, answer=answer)
        finally:
            self.seconds.append(time.perf_counter() - start)


@dataclass(frozen=True)
class Options:
    run: harness.BackendRun
    chunks: tuple[int, ...]


def body(i: int) -> dict[str, object]:
    return {"url": f"https://example.com/bench/{uuid.uuid4().hex}/{i}", "tags": ["bench", "b"]}


async def measure(url: str, opts: Options) -> Figures:
    settings = Settings(
        database_url=url,
        ratelimit_api="off",
        ratelimit_redirect="off",
        ratelimit_auth_fail="off",
        grpc_port=0,
        analytics=False,
        embedded_worker=False,
    )
    app = create_app(build(settings))
    figures = Figures()
    n = opts.run.requests
    if n % MAX_BATCH:
        raise BenchError(f"--requests must be a multiple of {MAX_BATCH:,} (whole batches)")
    async with app.router.lifespan_context(app):
        db: Database = app.state.kurz.db
        use_case = app.state.kurz.batches
        steps = use_case.steps = TimedSteps(app.state.kurz.idempotency)
        async with db.write(READ_COMMITTED) as conn:
            created = await key_queries.create(
                conn=conn, key_in=ApiKeyCreate(name="bench"), now=utcnow(system_clock)
            )
        statements = Statements(db)
        transport = httpx.ASGITransport(app=app)
        auth = {"Authorization": f"Bearer {created.secret}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://b", headers=auth) as c:

            async def one_by_one(n: int) -> None:
                for i in range(n):
                    response = await c.post("/api/v1/links", json=body(i))
                    if response.status_code != 201:
                        raise BenchError(f"POST answered {response.status_code}: {response.text}")

            async def batches(n: int, *, keyed: bool) -> None:
                for start in range(0, n, MAX_BATCH):
                    items = [body(i) for i in range(start, min(start + MAX_BATCH, n))]
                    headers = {"Idempotency-Key": f'"{uuid.uuid4()}"'} if keyed else {}
                    response = await c.post(
                        "/api/v1/links/batch", json={"links": items}, headers=headers
                    )
                    if response.status_code != 200 or '"status":' in response.text:
                        raise BenchError(f"a batch answered {response.status_code}")

            async def timed(mode: str, *, n: int = n, counted: bool = True) -> float:
                before = statements.count
                start = time.perf_counter()
                if mode == "one by one":
                    await one_by_one(n)
                else:
                    await batches(n, keyed=mode == "keyed batches")
                elapsed = time.perf_counter() - start
                if counted:
                    figures.statements[mode] = (statements.count - before) / n
                return n / elapsed

            for mode in MODES:  # warm-up: connections, caches, code paths
                await timed(mode, n=min(n, MAX_BATCH), counted=False)
            for round_ in range(opts.run.rounds):
                order = MODES if round_ % 2 == 0 else MODES[::-1]
                for mode in order:
                    figures.rates[mode].append(await timed(mode))
                for size in opts.chunks:
                    use_case.chunk = size
                    steps.seconds.clear()
                    figures.chunked.setdefault(size, []).append(
                        await timed("batches", counted=False)
                    )
                    figures.held.setdefault(size, []).extend(steps.seconds)
                use_case.chunk = CHUNK
                print(
                    f"  round {round_ + 1}: "
                    + ", ".join(f"{m} {figures.rates[m][-1]:,.0f}/s" for m in MODES)
                    + "; by chunk: "
                    + ", ".join(f"{s} {figures.chunked[s][-1]:,.0f}/s" for s in opts.chunks),
                    flush=True,
                )
    return figures


async def run_backend(backend: str, opts: Options) -> Figures:
    async with harness.migrated_database(backend, "batch") as url:
        return await measure(url, opts)


def report(opts: Options, results: dict[str, Figures]) -> list[str]:
    run = opts.run
    lines = [
        f"- machine: {os.cpu_count()} CPUs, {cpu_model()}, Python {sys.version.split()[0]}; "
        f"{source_state()}",
        f"- {run.rounds} round(s) of {run.requests:,} links per mode (a URL and two tags "
        f"each), modes alternating order; batches of {MAX_BATCH:,} in chunks of {CHUNK} "
        "per transaction; in process (httpx ASGI transport), no rate limits",
        "",
        "| backend | one by one, links/s | batches, links/s | keyed batches, links/s "
        "| batches / one by one | SQL statements per link (one / batch / keyed batch) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for backend, f in results.items():
        med = {m: statistics.median(f.rates[m]) for m in MODES}
        stmts = " / ".join(f"{f.statements[m]:.2f}" for m in MODES)
        lines.append(
            f"| {backend} | {med['one by one']:,.0f} | {med['batches']:,.0f} | "
            f"{med['keyed batches']:,.0f} | {f.ratio():.1f} | {stmts} |"
        )
    lines += [
        "",
        "Links per transaction (batches of 1,000, unkeyed): links/s, and how long a "
        "chunk's transaction took, median / slowest (on SQLite, how long it holds the "
        "one write lock).",
        "",
        "| backend | " + " | ".join(f"{size:,} per chunk" for size in opts.chunks) + " |",
        "|---|" + "---:|" * len(opts.chunks),
    ]
    for backend, f in results.items():
        cells = []
        for size in opts.chunks:
            rate = statistics.median(f.chunked[size])
            held = statistics.median(f.held[size]) * 1e3
            cells.append(f"{rate:,.0f}/s, {held:.1f} / {max(f.held[size]) * 1e3:.1f} ms")
        lines.append(f"| {backend} | " + " | ".join(cells) + " |")
    lines.append("")
    for backend, f in results.items():
        met = "met" if f.ratio() >= GOAL else "NOT met"
        lines.append(
            f"- {backend}: batches make links {f.ratio():.1f}x as fast as one by one, keyed "
            f"{f.ratio('keyed batches'):.1f}x (goal >= {GOAL:.0f}x: {met})"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--chunks", default="25,100,250,1000")
    known, rest = parser.parse_known_args(argv)
    chunks = tuple(int(size) for size in known.chunks.split(",") if size.strip())
    if not chunks or not all(1 <= size <= MAX_BATCH for size in chunks):
        print(f"--chunks: sizes from 1 to {MAX_BATCH}", file=sys.stderr)
        return 2
    run = harness.backend_run(
        rest, prog="python -m bench.batch", doc=__doc__, requests=10_000, unit="links",
        rounds=3,
    )  # fmt: skip
    opts = Options(run, chunks)
    results = harness.each_backend(run, lambda backend, _: run_backend(backend, opts))
    if results is None:
        return 1
    harness.publish(
        "Bulk create", report(opts, results),
        target="bench-batch", module="bench.batch", argv=argv, keep=not run.no_record,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
