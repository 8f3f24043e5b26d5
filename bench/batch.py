"""Bulk create against one by one: links per second, in one run.

    python -m bench.batch [--requests 10000] [--rounds 3] [--backends sqlite,postgresql]
                          [--chunks 25,100,250,1000] [--no-record]

Each backend gets a fresh database (a SQLite file; a PostgreSQL database created for
the run on KURZ_BENCH_PG, default the test server, and dropped after). kurz runs in
this process under httpx's ASGI transport, so the figures are kurz's own work plus the
database's, with no HTTP server or network in between. Each round makes `--requests`
links (each a URL and two tags) in each of three modes, in segments of 1,000 links
that take turns, so that a neighbour's load on the shared host falls on every mode
alike:

- one by one: 1,000 sequential POST /api/v1/links;
- batches: one POST /api/v1/links/batch of 1,000 links, written in chunks of
  kurz.links.batch.CHUNK links per transaction;
- keyed batches: the same with an Idempotency-Key (whose record each chunk rewrites).

Two rates per mode: links per second of wall time, and links per second of CPU time,
this process's and, on PostgreSQL, that of the server processes serving the run's
database (read from /proc: the server runs on this machine). CPU time does not move
when a neighbour takes the CPU away; wall time does. batch/one is the ratio of the
rates within a round, median over rounds (the issue asks for at least 20). SQL
statements per link are counted on the engine. Then, once per round, batches with each
of `--chunks` links per transaction: their rate, and how long one chunk's transaction
took (the median and the slowest), which is how long it holds SQLite's one write lock
and keeps every other writer waiting.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
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
class Rates:
    """Links per second of wall time and of CPU time, one of each per round."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


@dataclass
class Figures:
    rates: dict[str, Rates] = field(default_factory=lambda: {m: Rates() for m in MODES})
    statements: dict[str, float] = field(default_factory=dict)
    # By links per transaction: the rates, and the seconds each chunk's transaction took.
    chunked: dict[int, Rates] = field(default_factory=dict)
    held: dict[int, list[float]] = field(default_factory=dict)

    def ratio(self, mode: str = "batches", *, cpu: bool = False) -> float:
        def of(rates: Rates) -> list[float]:
            return rates.cpu if cpu else rates.wall

        pairs = zip(of(self.rates[mode]), of(self.rates["one by one"]), strict=True)
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


def ticks_of(pids: Iterable[int]) -> dict[int, int]:
    """User + system CPU time (clock ticks) of each process of `pids` still there."""
    ticks = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue  # it ended meanwhile
        ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


class Clocks:
    """Wall and CPU time: this process's CPU and, on PostgreSQL, the server's for the
    run's database (its backends' utime and stime in /proc)."""

    def __init__(self, database_url: str) -> None:
        self.database = None if database_url.startswith("sqlite") else database_url
        self.tick = os.sysconf("SC_CLK_TCK")

    async def _server(self) -> dict[int, int]:
        if self.database is None:
            return {}
        conn = await asyncpg.connect(self.database, timeout=5)
        try:
            pids = await conn.fetch(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await conn.close()
        return ticks_of(pid for (pid,) in pids)

    async def timed(self, work: Callable[[], Awaitable[None]]) -> tuple[float, float]:
        """`work`'s wall seconds and CPU seconds (the server's only for backends that
        served before and after it)."""
        server = await self._server()
        start, cpu = time.perf_counter(), time.process_time()
        await work()
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        after = await self._server()
        used = sum(after[pid] - server[pid] for pid in after.keys() & server.keys())
        return wall, cpu + used / self.tick


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
    clocks = Clocks(url)
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

            async def one_by_one() -> None:
                for i in range(MAX_BATCH):
                    response = await c.post("/api/v1/links", json=body(i))
                    if response.status_code != 201:
                        raise BenchError(f"POST answered {response.status_code}: {response.text}")

            async def batch(keyed: bool) -> None:
                items = [body(i) for i in range(MAX_BATCH)]
                headers = {"Idempotency-Key": f'"{uuid.uuid4()}"'} if keyed else {}
                response = await c.post(
                    "/api/v1/links/batch", json={"links": items}, headers=headers
                )
                if response.status_code != 200 or '"status":' in response.text:
                    raise BenchError(f"a batch answered {response.status_code}")

            work: dict[str, Callable[[], Awaitable[None]]] = {
                "one by one": one_by_one,
                "batches": lambda: batch(False),
                "keyed batches": lambda: batch(True),
            }
            for mode in MODES:  # warm-up: connections, caches, code paths
                await work[mode]()
            segments = n // MAX_BATCH
            for round_ in range(opts.run.rounds):
                spent = {m: [0.0, 0.0] for m in MODES}
                counted = dict.fromkeys(MODES, 0)
                for segment in range(segments):
                    turn = (round_ * segments + segment) % len(MODES)
                    for mode in MODES[turn:] + MODES[:turn]:
                        before = statements.count
                        wall, cpu = await clocks.timed(work[mode])
                        counted[mode] += statements.count - before
                        spent[mode][0] += wall
                        spent[mode][1] += cpu
                for mode in MODES:
                    figures.rates[mode].wall.append(n / spent[mode][0])
                    figures.rates[mode].cpu.append(n / spent[mode][1])
                    figures.statements[mode] = counted[mode] / n
                for size in opts.chunks:
                    use_case.chunk = size
                    steps.seconds.clear()
                    wall = cpu = 0.0
                    for _ in range(segments):
                        took = await clocks.timed(work["batches"])
                        wall, cpu = wall + took[0], cpu + took[1]
                    rates = figures.chunked.setdefault(size, Rates())
                    rates.wall.append(n / wall)
                    rates.cpu.append(n / cpu)
                    figures.held.setdefault(size, []).extend(steps.seconds)
                use_case.chunk = CHUNK
                print(
                    f"  round {round_ + 1}: "
                    + ", ".join(f"{m} {figures.rates[m].wall[-1]:,.0f}/s" for m in MODES)
                    + "; by chunk: "
                    + ", ".join(f"{s} {figures.chunked[s].wall[-1]:,.0f}/s" for s in opts.chunks),
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
        f"each), in segments of {MAX_BATCH:,} links taking turns; batches of "
        f"{MAX_BATCH:,} in chunks of {CHUNK} per transaction; in process (httpx ASGI "
        "transport), no rate limits",
        "- links/s of wall time, and (in brackets) of CPU time: this process's and, on "
        "PostgreSQL, the server's for the run's database",
        "",
        "| backend | one by one, links/s | batches, links/s | keyed batches, links/s "
        "| batches / one by one | SQL statements per link (one / batch / keyed batch) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for backend, f in results.items():
        med = {
            m: f"{statistics.median(f.rates[m].wall):,.0f} "
            f"({statistics.median(f.rates[m].cpu):,.0f})"
            for m in MODES
        }
        stmts = " / ".join(f"{f.statements[m]:.2f}" for m in MODES)
        lines.append(
            f"| {backend} | {med['one by one']} | {med['batches']} | {med['keyed batches']} "
            f"| {f.ratio():.1f} ({f.ratio(cpu=True):.1f}) | {stmts} |"
        )
    lines += [
        "",
        "Links per transaction (batches of 1,000, unkeyed): links/s of wall time (of CPU "
        "time), and how long a chunk's transaction took, median / slowest (on SQLite, how "
        "long it holds the one write lock).",
        "",
        "| backend | " + " | ".join(f"{size:,} per chunk" for size in opts.chunks) + " |",
        "|---|" + "---:|" * len(opts.chunks),
    ]
    for backend, f in results.items():
        cells = []
        for size in opts.chunks:
            rates, held = f.chunked[size], f.held[size]
            cells.append(
                f"{statistics.median(rates.wall):,.0f}/s ({statistics.median(rates.cpu):,.0f}), "
                f"{statistics.median(held) * 1e3:.1f} / {max(held) * 1e3:.1f} ms"
            )
        lines.append(f"| {backend} | " + " | ".join(cells) + " |")
    lines.append("")
    for backend, f in results.items():
        wall, cpu = f.ratio(), f.ratio(cpu=True)
        met = {ratio: "met" if ratio >= GOAL else "NOT met" for ratio in (wall, cpu)}
        lines.append(
            f"- {backend}: batches make links {wall:.1f}x as fast as one by one by the "
            f"clock ({met[wall]}), {cpu:.1f}x by CPU time ({met[cpu]}); keyed batches "
            f"{f.ratio('keyed batches'):.1f}x and {f.ratio('keyed batches', cpu=True):.1f}x "
            f"(goal >= {GOAL:.0f}x)"
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
    if run.requests % MAX_BATCH:
        print(f"--requests: a multiple of {MAX_BATCH:,} (whole batches)", file=sys.stderr)
        return 2
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
