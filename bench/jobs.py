"""Jobs per second and enqueue-to-start latency: kurz.jobs against procrastinate, in one run.

    python -m bench.jobs [--jobs 2000] [--rounds 5] [--latency-samples 200]
                         [--concurrency 10] [--quick] [--profile NAME] [--no-record]

Three systems, each on a database made for the run: kurz on a SQLite file, kurz on
PostgreSQL, and procrastinate on the same PostgreSQL server (KURZ_BENCH_PG names the
server's admin database; the bench's own databases are created and dropped there).
Rounds interleave the systems, in reverse order every other round; per round and system:

- enqueue: `--jobs` jobs, one per transaction and one after another, the way an app
  enqueues them, into an empty table;
- end to end: then one worker (`--concurrency` jobs at a time) runs them with a no-op
  handler; timed from its start until it has recorded the last one done and stopped.

Then, on PostgreSQL: enqueue to start. A worker sits idle, polling only every
IDLE_POLL s, so that only LISTEN/NOTIFY can start a job sooner; jobs are enqueued one
at a time, 20 to 30 ms apart, each timed from the enqueue call to its handler's start.

Rates are medians over rounds, ratios medians of the per-round ratios. CPU per job
is counted for this process (enqueuer and worker) and for the PostgreSQL backends
serving the system's database (read from /proc, when the server runs on this host):
unlike rates, it does not move much when a neighbour takes the CPU away.
`--profile NAME` then runs one more end-to-end pass of one system under cProfile.
Every run draws docs/designs/figures/job-scheduler-throughput.svg from its medians.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import psycopg
import sqlalchemy as sa
from sqlalchemy import event

from bench import figures as plots
from bench import harness
from bench.harness import BenchError, cpu_model, source_state
from bench.jobs_procrastinate import Procrastinate
from kurz.clock import system_clock
from kurz.db import READ_COMMITTED, Database, upgrade
from kurz.jobs import JobState, JobStore, Registry, Worker

PG_ADMIN = os.environ.get("KURZ_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
E2E_GOAL = 2.0  # kurz at least 2x procrastinate end to end, on PostgreSQL
LATENCY_GOAL_MS = 50.0  # median enqueue to start on PostgreSQL
IDLE_POLL = 5.0
RUN_POLL = 1.0
WARM_UP_JOBS = 50
START_TIMEOUT = 60.0


class Contender(Protocol):
    """A job system under test, with a no-op job kind that reports when it starts."""

    name: str
    backend: str
    # Its PostgreSQL database; None on SQLite.
    database: str | None

    async def open(self) -> None: ...

    async def reset(self) -> None:
        """Empty its job tables (not timed)."""

    async def enqueue(self, i: int) -> None:
        """One job whose handler reports `i` when it starts, in a transaction of its own."""

    async def settle(self) -> None:
        """After an enqueue phase, not timed: fresh planner statistics."""

    async def work(self, *, concurrency: int, poll: float) -> None:
        """Run a worker until cancelled; then stop it gracefully, as on SIGTERM."""

    async def finished(self) -> int:
        """Jobs recorded as done."""

    def statements(self) -> int | None:
        """SQL statements sent so far, if it can tell."""

    async def close(self) -> None: ...


class Starts:
    """When each handler started, by the number its job carries; `all` is set once as
    many as expected have."""

    def __init__(self) -> None:
        self.expect(0)

    def expect(self, count: int) -> None:
        self.target = count
        self.count = 0
        self.at: dict[int, float] = {}
        self.all = asyncio.Event()

    def __call__(self, i: int) -> None:
        self.at[i] = time.perf_counter()
        self.count += 1
        if self.count >= self.target:
            self.all.set()


class Kurz:
    """kurz.jobs on one database, with a registry holding the no-op kind."""

    name = "kurz"

    def __init__(self, url: str, started: Callable[[int], None]) -> None:
        self.db = Database.from_url(url)
        self.backend = "sqlite" if self.db.is_sqlite else "postgresql"
        self.database = None if self.db.is_sqlite else url.rsplit("/", 1)[1]
        self.store = JobStore(self.db, system_clock)
        self.registry = Registry()

        @self.registry.job("noop")
        async def noop(payload: dict[str, Any]) -> None:
            started(int(payload["i"]))

        self._statements = 0
        event.listen(self.db.engine.sync_engine, "before_cursor_execute", self._count)

    def _count(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # SQLite's BEGIN IMMEDIATE goes through the cursor, PostgreSQL's BEGIN does not.
        if not statement.startswith("BEGIN"):
            self._statements += 1

    async def open(self) -> None:
        await upgrade(self.db)

    async def reset(self) -> None:
        async with self.db.write(READ_COMMITTED) as conn:
            await conn.execute(
                sa.text("DELETE FROM jobs" if self.db.is_sqlite else "TRUNCATE jobs")
            )

    async def enqueue(self, i: int) -> None:
        await self.store.enqueue("noop", {"i": i})

    async def settle(self) -> None:
        # Autovacuum would, sooner or later; an embedded SQLite never does.
        if not self.db.is_sqlite:
            async with self.db.write(READ_COMMITTED) as conn:
                await conn.execute(sa.text("ANALYZE jobs"))

    async def work(self, *, concurrency: int, poll: float) -> None:
        worker = Worker(self.store, self.registry, concurrency=concurrency, poll=poll)
        run = asyncio.create_task(worker.run())
        try:
            await asyncio.shield(run)
        except asyncio.CancelledError:
            worker.stop()
            await run
            raise
        finally:
            # No LISTEN connection between workers: it would hear every enqueue.
            await self.store.close()
        raise BenchError("the kurz worker stopped by itself")

    async def finished(self) -> int:
        return (await self.store.counts()).get(("default", JobState.DONE), 0)

    def statements(self) -> int | None:
        return self._statements

    async def close(self) -> None:
        await self.store.close()
        await self.db.dispose()


def label(c: Contender) -> str:
    return f"{c.name} on {c.backend}"


class ServerCpu:
    """CPU time spent by the PostgreSQL backends serving a database (Linux, local server)."""

    def __init__(self, admin: asyncpg.Connection) -> None:
        self.admin = admin

    async def read(self, database: str | None) -> dict[int, int] | None:
        """Nanoseconds on CPU per backend; None when they cannot be seen from here."""
        if database is None:
            return None
        rows = await self.admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1", database
        )
        spent = _on_cpu_ns([row["pid"] for row in rows])
        return spent or None


def _on_cpu_ns(pids: list[int]) -> dict[int, int]:
    spent = {}
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/schedstat").read_text()
        except OSError:
            continue  # not on this host, or it ended meanwhile
        spent[pid] = int(stat.split()[0])
    return spent


@dataclass(frozen=True, slots=True)
class Phase:
    jobs: int
    seconds: float
    cpu: float
    server_cpu: float | None
    statements: int | None

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds


@dataclass
class Figures:
    enqueue: list[Phase] = field(default_factory=list)
    run: list[Phase] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)


async def timed(c: Contender, server: ServerCpu, jobs: int, body: Awaitable[None]) -> Phase:
    before = await server.read(c.database)
    statements = c.statements()
    cpu = time.process_time()
    start = time.perf_counter()
    await body
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    after = await server.read(c.database)
    server_cpu = None
    if before is not None and after is not None:
        # A backend that connected meanwhile counts whole; one that left, not at all.
        server_cpu = sum(ns - before.get(pid, 0) for pid, ns in after.items()) / 1e9
    end = c.statements()
    spent = None if statements is None or end is None else end - statements
    return Phase(jobs, seconds, cpu, server_cpu, spent)


async def until(started: asyncio.Event, worker: asyncio.Task[None], within: float) -> None:
    """Wait for `started`; fail if the worker ends first or nothing starts in time."""
    waiter = asyncio.create_task(started.wait())
    try:
        await asyncio.wait({waiter, worker}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if started.is_set():
        return
    if worker.done():
        worker.result()
        raise BenchError("the worker stopped before the jobs ran")
    raise BenchError(f"the jobs did not start within {within:g} s")


async def stop(worker: asyncio.Task[None]) -> None:
    worker.cancel()
    await asyncio.wait({worker})
    if not worker.cancelled() and (exc := worker.exception()) is not None:
        raise exc


async def enqueue_phase(c: Contender, server: ServerCpu, jobs: int) -> Phase:
    await c.reset()

    async def enqueue_all() -> None:
        for i in range(jobs):
            await c.enqueue(i)

    phase = await timed(c, server, jobs, enqueue_all())
    await c.settle()
    return phase


async def run_phase(
    c: Contender, server: ServerCpu, starts: Starts, jobs: int, concurrency: int
) -> Phase:
    """Run the `jobs` queued jobs with a fresh worker; timed until it has stopped."""
    starts.expect(jobs)

    async def run_all() -> None:
        worker = asyncio.create_task(c.work(concurrency=concurrency, poll=RUN_POLL))
        try:
            await until(starts.all, worker, START_TIMEOUT)
        finally:
            await stop(worker)

    phase = await timed(c, server, jobs, run_all())
    done = await c.finished()
    if done != jobs:
        raise BenchError(f"{label(c)}: {done} of {jobs} jobs recorded as done")
    return phase


async def latency_phase(
    c: Contender, starts: Starts, samples: int, concurrency: int, rng: random.Random
) -> list[float]:
    """Seconds from each enqueue call to its handler's start, with an idle worker."""
    await c.reset()
    worker = asyncio.create_task(c.work(concurrency=concurrency, poll=IDLE_POLL))
    latencies = []
    try:
        # Time to connect and LISTEN; the warm-up jobs prove it does.
        await asyncio.sleep(0.5)
        for i in range(-3, samples):
            await asyncio.sleep(0.02 + 0.01 * rng.random())
            starts.expect(1)
            start = time.perf_counter()
            await c.enqueue(i)
            await until(starts.all, worker, START_TIMEOUT)
            if i >= 0:
                latencies.append(starts.at[i] - start)
    finally:
        await stop(worker)
    return latencies


@dataclass(frozen=True)
class Options:
    jobs: int
    rounds: int
    latency_samples: int
    concurrency: int
    profile: str | None
    no_record: bool


async def measure(
    contenders: list[Contender], server: ServerCpu, starts: Starts, opts: Options
) -> dict[str, Figures]:
    figures = {label(c): Figures() for c in contenders}
    for c in contenders:  # warm-up: connections, compiled statements, code paths
        await enqueue_phase(c, server, WARM_UP_JOBS)
        await run_phase(c, server, starts, WARM_UP_JOBS, opts.concurrency)
    rng = random.Random(6)
    per_round = -(-opts.latency_samples // opts.rounds)
    for round_ in range(opts.rounds):
        order = contenders if round_ % 2 == 0 else contenders[::-1]
        for c in order:
            f = figures[label(c)]
            f.enqueue.append(await enqueue_phase(c, server, opts.jobs))
            f.run.append(await run_phase(c, server, starts, opts.jobs, opts.concurrency))
            print(
                f"  round {round_ + 1}, {label(c)}: enqueue {f.enqueue[-1].rate:,.0f}/s, "
                f"end to end {f.run[-1].rate:,.0f}/s",
                flush=True,
            )
        for c in order:
            if c.backend != "postgresql":
                continue
            f = figures[label(c)]
            got = await latency_phase(c, starts, per_round, opts.concurrency, rng)
            f.latency.extend(got)
            print(
                f"  round {round_ + 1}, {label(c)}: enqueue to start, median "
                f"{statistics.median(got) * 1e3:.1f} ms",
                flush=True,
            )
    return figures


async def profile(c: Contender, server: ServerCpu, starts: Starts, opts: Options) -> None:
    """One more end-to-end pass under cProfile: where the worker's time goes."""
    await enqueue_phase(c, server, opts.jobs)
    profiler = cProfile.Profile()
    profiler.enable()
    phase = await run_phase(c, server, starts, opts.jobs, opts.concurrency)
    profiler.disable()
    print(f"\n{label(c)} under cProfile: {phase.rate:,.0f} jobs/s (slower than unprofiled)")
    if phase.statements is not None:
        print(f"SQL statements per job (BEGIN/COMMIT not counted): {phase.statements / phase.jobs}")
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)


async def run(opts: Options) -> tuple[dict[str, Figures], str]:
    suffix = f"{os.getpid()}_{secrets.token_hex(3)}"
    names = [f"kurz_bench_jobs_{suffix}", f"kurz_bench_procrastinate_{suffix}"]
    base = PG_ADMIN.rsplit("/", 1)[0]
    admin = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        server_version = await admin.fetchval("SHOW server_version")
        for name in names:
            await admin.execute(f"CREATE DATABASE {name}")
        with tempfile.TemporaryDirectory(prefix="kurz-bench-jobs-") as tmp:
            starts = Starts()
            contenders: list[Contender] = [
                Kurz(f"sqlite:///{tmp}/kurz.db", starts),
                Kurz(f"{base}/{names[0]}", starts),
                Procrastinate(f"{base}/{names[1]}", starts),
            ]
            try:
                for c in contenders:
                    await c.open()
                server = ServerCpu(admin)
                figures = await measure(contenders, server, starts, opts)
                if opts.profile:
                    chosen = next(c for c in contenders if label(c) == opts.profile)
                    await profile(chosen, server, starts, opts)
            finally:
                for c in contenders:
                    await c.close()
        return figures, f"PostgreSQL {server_version.split()[0]}"
    finally:
        for name in names:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


def _per_job(phases: list[Phase], value: Callable[[Phase], float | None], scale: float) -> str:
    per_job = [v / p.jobs * scale for p in phases if (v := value(p)) is not None]
    return f"{statistics.median(per_job):,.{0 if scale > 1 else 1}f}" if per_job else "-"


def _ratio(a: list[Phase], b: list[Phase]) -> float:
    return statistics.median(x.rate / y.rate for x, y in zip(a, b, strict=True))


def versions(server: str) -> str:
    def v(name: str) -> str:
        return f"{name} {metadata.version(name)}"

    drivers = f"{v('SQLAlchemy')}, {v('asyncpg')}, {v('aiosqlite')}"
    # psycopg's pure-Python libpq binding is slower than its C ones (psycopg[binary]).
    rival = f"{v('procrastinate')} on {v('psycopg')} ({psycopg.pq.__impl__} implementation)"
    return f"- {server}; kurz on {drivers}; {rival}"


def report(opts: Options, figures: dict[str, Figures], server: str) -> list[str]:
    lines = [
        f"- machine: {os.cpu_count()} CPUs, {cpu_model()}, Python {sys.version.split()[0]}; "
        f"{source_state()}",
        versions(server),
        f"- {opts.rounds} round(s), systems interleaved: {opts.jobs:,} jobs enqueued one per "
        f"transaction, then run by one worker (concurrency {opts.concurrency}) with a no-op "
        "handler until all are done; medians over rounds",
        f"- enqueue to start: {opts.latency_samples} jobs, one at a time 20-30 ms apart, to "
        f"an idle worker that polls every {IDLE_POLL:g} s, so only LISTEN/NOTIFY starts a "
        "job sooner; from the enqueue call to the handler's start, over all samples",
        "- CPU per job: this process (enqueuer and worker), and the PostgreSQL backends "
        "of the system's database",
        "",
        "| system | enqueue jobs/s | end to end jobs/s | enqueue to start p50 / p95 "
        "| CPU µs/job here (enqueue / run) | PostgreSQL CPU µs/job (enqueue / run) "
        "| SQL statements/job (enqueue / run) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, f in figures.items():
        enqueue = statistics.median(p.rate for p in f.enqueue)
        end_to_end = statistics.median(p.rate for p in f.run)
        latency = "-"
        if len(f.latency) >= 2:
            p95 = statistics.quantiles(f.latency, n=20)[18]
            latency = f"{statistics.median(f.latency) * 1e3:.1f} / {p95 * 1e3:.1f} ms"
        here = " / ".join(_per_job(ph, lambda p: p.cpu, 1e6) for ph in (f.enqueue, f.run))
        server = " / ".join(_per_job(ph, lambda p: p.server_cpu, 1e6) for ph in (f.enqueue, f.run))
        stmts = " / ".join(_per_job(ph, lambda p: p.statements, 1) for ph in (f.enqueue, f.run))
        lines.append(
            f"| {name} | {enqueue:,.0f} | {end_to_end:,.0f} | {latency} | {here} | {server} "
            f"| {stmts} |"
        )
    kurz, kurz_lite, rival = (
        figures["kurz on postgresql"],
        figures["kurz on sqlite"],
        figures["procrastinate on postgresql"],
    )
    e2e = _ratio(kurz.run, rival.run)
    latency_ms = statistics.median(kurz.latency) * 1e3
    lines += [
        "",
        f"- end to end, kurz / procrastinate on PostgreSQL: {e2e:.2f}x "
        f"(goal >= {E2E_GOAL:g}x: {'met' if e2e >= E2E_GOAL else 'NOT met'}); "
        f"kurz on SQLite / procrastinate: {_ratio(kurz_lite.run, rival.run):.2f}x",
        "- enqueue, kurz / procrastinate on PostgreSQL: "
        f"{_ratio(kurz.enqueue, rival.enqueue):.2f}x; kurz on SQLite / procrastinate: "
        f"{_ratio(kurz_lite.enqueue, rival.enqueue):.2f}x",
        f"- enqueue to start on PostgreSQL, kurz median: {latency_ms:.1f} ms "
        f"(goal < {LATENCY_GOAL_MS:g} ms: {'met' if latency_ms < LATENCY_GOAL_MS else 'NOT met'})",
    ]
    if psycopg.pq.__impl__ == "python":
        lines.append(
            "- procrastinate ran on psycopg's pure-Python libpq binding, which is slower than "
            "the psycopg[binary] it is deployed with: these ratios flatter kurz"
        )
    return lines


def draw(figures: dict[str, Figures], opts: Options) -> None:
    """The run's medians as bars: jobs/s enqueued and run end to end (wall clock, on a
    loaded machine), and the CPU each job cost this process and PostgreSQL's backends."""
    names = list(figures)
    fig, (rate, cpu) = plots.grid(1, 2, width=8.0, height=3.6)
    fig.suptitle(
        f"kurz.jobs vs procrastinate: {opts.jobs:,} no-op jobs x {opts.rounds} round(s), "
        "SQLite and PostgreSQL, shared 2-CPU machine",
        x=0.01, ha="left", fontsize=10,
    )  # fmt: skip
    width = 0.38
    xs = range(len(names))
    for offset, (what, phases) in enumerate(
        (("enqueue, one per transaction", "enqueue"), ("end to end, one worker", "run"))
    ):
        values = [statistics.median(p.rate for p in getattr(figures[n], phases)) for n in names]
        bars = rate.bar([x + (offset - 0.5) * width for x in xs], values, width, label=what)
        rate.bar_label(bars, fmt="{:,.0f}", fontsize=7)
    rate.set_xticks(list(xs), [n.replace(" on ", "\non ") for n in names])
    rate.set_ylabel("jobs/s (wall clock, loaded machine)")
    rate.legend(loc="upper right", fontsize=8)
    rate.set_title("Throughput", loc="left", fontsize=9)
    here = [statistics.median(p.cpu / p.jobs * 1e6 for p in figures[n].run) for n in names]
    server = [
        statistics.median(v) if (v := [p.server_cpu / p.jobs * 1e6 for p in figures[n].run
                                       if p.server_cpu is not None]) else 0.0
        for n in names
    ]  # fmt: skip
    cpu.bar(list(xs), here, 0.6, label="this process (worker)")
    bars = cpu.bar(list(xs), server, 0.6, bottom=here, label="PostgreSQL backends")
    cpu.bar_label(bars, labels=[f"{a + b:,.0f}" for a, b in zip(here, server, strict=True)],
                  fontsize=7)  # fmt: skip
    cpu.set_xticks(list(xs), [n.replace(" on ", "\non ") for n in names])
    cpu.set_ylabel("CPU µs per job run")
    cpu.legend(loc="upper left", fontsize=8)
    cpu.set_title("CPU per job, end to end", loc="left", fontsize=9)
    plots.save(fig, "designs/figures/job-scheduler-throughput.svg")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(
        prog="python -m bench.jobs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--jobs", type=int, default=2_000, help="jobs per system and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds")
    parser.add_argument(
        "--latency-samples", type=int, default=200, help="enqueue-to-start samples per system"
    )
    parser.add_argument("--concurrency", type=int, default=10, help="jobs a worker runs at once")
    parser.add_argument(
        "--quick", action="store_true", help="200 jobs, 2 rounds, 40 latency samples"
    )
    parser.add_argument(
        "--profile",
        choices=["kurz on sqlite", "kurz on postgresql", "procrastinate on postgresql"],
        help="then profile one end-to-end pass of this system (printed, not recorded)",
    )
    parser.add_argument("--no-record", action="store_true", help="do not append to the docs")
    args = parser.parse_args(argv)
    if args.quick:
        args.jobs, args.rounds, args.latency_samples = 200, 2, 40
    if args.jobs < 10 or args.rounds < 1 or args.latency_samples < 2 or args.concurrency < 1:
        parser.error("--jobs >= 10, --rounds >= 1, --latency-samples >= 2, --concurrency >= 1")
    opts = Options(
        args.jobs, args.rounds, args.latency_samples, args.concurrency, args.profile, args.no_record
    )
    try:
        figures, server = asyncio.run(run(opts))
    except (BenchError, OSError, asyncpg.PostgresError) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    lines = report(opts, figures, server)
    draw(figures, opts)
    harness.publish(
        "Jobs: kurz.jobs against procrastinate", lines,
        target="bench-jobs", module="bench.jobs", argv=argv, keep=not opts.no_record,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
