"""Lab 1: optimistic against pessimistic locking, on a contended counter.

    python -m bench.lab.locking [--seconds 0.7] [--rounds 3] [--writers 1,4,16,64]
                                [--backends postgresql,sqlite]
                                [--sqlite-writers processes|threads] [--quick] [--write]

Every update adds one to a counter row and bumps its version, in one of three ways:

- optimistic: read value and version, then `UPDATE ... WHERE id = ? AND version = ?`;
  no row matched means another writer got there first, so read again (a retry);
- pessimistic: one transaction that locks the row before reading it (PostgreSQL
  `SELECT ... FOR UPDATE`; SQLite has no row locks, so `BEGIN IMMEDIATE`, which takes
  the database's one write lock), then the UPDATE;
- atomic: one `UPDATE ... SET value = value + 1`.

SQLite gets a fourth, "deferred": a plain BEGIN, then read, then write. It is the
mistake BEGIN IMMEDIATE avoids, run to count what it costs.

Two workloads: "hot" (every update hits row 1) and "spread" (a row picked at random
of 1,000). A cell (backend, workload, strategy, writers) runs `--rounds` rounds of
`--seconds`, each on a fresh table; the strategies of a workload take turns round by
round, in alternating order, so that a burst of load from elsewhere on the machine
does not land on one strategy only. After every round the counters must sum to the
updates the writers counted, else the run exits 1.

PostgreSQL writers are coroutines in this process, one asyncpg connection each, READ
COMMITTED. SQLite writers are processes (or threads), one sqlite3 connection each,
configured as kurz configures its own: WAL, synchronous=NORMAL, busy_timeout 10 s.
Page: docs/lab/locking.md.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from matplotlib.ticker import MaxNLocator

from bench import figures
from bench.harness import command_line, percentile
from bench.lab import page

ROWS = 1_000
HOT_ROW = 1
WORKLOADS = ("hot", "spread")
STRATEGIES = ("optimistic", "pessimistic", "atomic")
SQLITE_ONLY = ("deferred",)
BACKENDS = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}
BUSY_TIMEOUT_MS = 10_000  # kurz's, src/kurz/db/engine.py
START_MARGIN = 0.2  # s between handing out a round and its clock starting


@dataclass
class Tally:
    """What one writer did in one round."""

    updates: int = 0
    retries: int = 0  # optimistic: the version had moved on
    aborts: int = 0  # the database refused: SQLITE_BUSY, a deadlock, a serialization failure
    latencies: list[float] = field(default_factory=list)
    finished: float = 0.0


@dataclass(frozen=True)
class Round:
    seconds: float  # from the common start to the last writer's end
    tallies: Sequence[Tally]
    counted: int  # the sum of the counters afterwards
    cpu: float | None = None  # this process's CPU seconds (PostgreSQL: the client's share)

    @property
    def updates(self) -> int:
        return sum(t.updates for t in self.tallies)


@dataclass
class Cell:
    backend: str
    workload: str
    strategy: str
    writers: int
    rounds: list[Round] = field(default_factory=list)

    def tallies(self) -> Iterator[Tally]:
        return (t for r in self.rounds for t in r.tallies)

    @property
    def updates(self) -> int:
        return sum(r.updates for r in self.rounds)

    @property
    def rate(self) -> float:
        """Updates per second: the median over rounds."""
        return statistics.median(r.updates / r.seconds for r in self.rounds)

    def per_thousand(self, what: str) -> float:
        """Retries or aborts per 1,000 successful updates."""
        count: int = sum(getattr(t, what) for t in self.tallies())
        return 1000 * count / max(self.updates, 1)

    def latency_us(self, q: float) -> float:
        """The q-quantile (nearest rank) of one successful update's latency, in µs."""
        return 1e6 * percentile((x for t in self.tallies() for x in t.latencies), q)

    @property
    def client_cpu(self) -> float | None:
        cpu = [r.cpu for r in self.rounds if r.cpu is not None]
        return sum(cpu) / sum(r.seconds for r in self.rounds) if cpu else None

    @property
    def lost(self) -> int:
        """Updates the writers counted that the table does not hold, over all rounds."""
        return sum(abs(r.updates - r.counted) for r in self.rounds)


def picker(workload: str, seed: int) -> Callable[[], int]:
    if workload == "hot":
        return lambda: HOT_ROW
    rng = random.Random(seed)
    return lambda: rng.randint(1, ROWS)


def turns(strategies: Sequence[str], rounds: int) -> Iterator[str]:
    """The strategies in the order their rounds run: ABC, CBA, ABC, ..."""
    for r in range(rounds):
        yield from strategies if r % 2 == 0 else reversed(strategies)


# PostgreSQL: coroutines in this process, one connection each.


async def pg_optimistic(conn: Any, row: int) -> bool:
    value, version = await conn.fetchrow("SELECT value, version FROM counters WHERE id = $1", row)
    status: str = await conn.execute(
        "UPDATE counters SET value = $2, version = version + 1 WHERE id = $1 AND version = $3",
        row, value + 1, version,
    )  # fmt: skip
    return status == "UPDATE 1"


async def pg_pessimistic(conn: Any, row: int) -> bool:
    async with conn.transaction(isolation="read_committed"):
        value, version = await conn.fetchrow(
            "SELECT value, version FROM counters WHERE id = $1 FOR UPDATE", row
        )
        await conn.execute(
            "UPDATE counters SET value = $2, version = $3 WHERE id = $1",
            row, value + 1, version + 1,
        )  # fmt: skip
    return True


async def pg_atomic(conn: Any, row: int) -> bool:
    await conn.execute(
        "UPDATE counters SET value = value + 1, version = version + 1 WHERE id = $1", row
    )
    return True


PG_UPDATES: dict[str, Callable[[Any, int], Awaitable[bool]]] = {
    "optimistic": pg_optimistic,
    "pessimistic": pg_pessimistic,
    "atomic": pg_atomic,
}


async def pg_writer(
    pool: Any, strategy: str, pick: Callable[[], int], start: float, end: float
) -> Tally:
    update, tally = PG_UPDATES[strategy], Tally()
    async with pool.acquire() as conn:
        await asyncio.sleep(start - time.monotonic())
        while time.monotonic() < end:
            row, began = pick(), time.monotonic()
            while True:
                try:
                    if await update(conn, row):
                        break
                    tally.retries += 1
                except asyncpg.TransactionRollbackError:
                    tally.aborts += 1
            tally.latencies.append(time.monotonic() - began)
            tally.updates += 1
    tally.finished = time.monotonic()
    return tally


async def pg_reset(conn: Any) -> None:
    await conn.execute("DROP TABLE IF EXISTS counters")
    await conn.execute(
        "CREATE TABLE counters (id integer PRIMARY KEY, value bigint NOT NULL,"
        " version bigint NOT NULL)"
    )
    await conn.execute("INSERT INTO counters SELECT i, 0, 0 FROM generate_series(1, $1) AS i", ROWS)
    await conn.execute("VACUUM ANALYZE counters")


async def pg_pool(url: str, size: int) -> Any:
    # The server is shared; wait a little for connection slots rather than fail at once.
    for attempt in range(30):
        try:
            return await asyncpg.create_pool(
                url, min_size=size, max_size=size,
                server_settings={"default_transaction_isolation": "read committed"},
            )  # fmt: skip
        except asyncpg.TooManyConnectionsError:
            if attempt == 29:
                raise
            await asyncio.sleep(1)
    raise AssertionError("unreachable")


async def pg_cells(opts: Options) -> list[Cell]:
    cells = []
    async with page.postgres_database("locking") as url:
        admin = await asyncpg.connect(url)
        try:
            for writers in opts.writers:
                pool = await pg_pool(url, writers)
                try:
                    for workload in WORKLOADS:
                        by = {s: Cell("postgresql", workload, s, writers) for s in STRATEGIES}
                        for strategy in turns(STRATEGIES, opts.rounds):
                            by[strategy].rounds.append(
                                await pg_round(pool, admin, workload, strategy, opts)
                            )
                        cells += shown(by.values())
                finally:
                    await pool.close()
        finally:
            await admin.close()
    return cells


async def pg_round(pool: Any, admin: Any, workload: str, strategy: str, opts: Options) -> Round:
    await pg_reset(admin)
    start = time.monotonic() + START_MARGIN
    end = start + opts.seconds
    cpu = time.process_time()
    tallies = await asyncio.gather(
        *(
            pg_writer(pool, strategy, picker(workload, seed), start, end)
            for seed in range(pool.get_max_size())
        )
    )
    cpu = time.process_time() - cpu
    counted = int(await admin.fetchval("SELECT sum(value) FROM counters"))
    return Round(max(t.finished for t in tallies) - start, tallies, counted, cpu)


# SQLite: processes (or threads), one connection each.


def sqlite_connect(path: str) -> sqlite3.Connection:
    # isolation_level=None: the module never BEGINs on its own; every BEGIN here is explicit.
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return conn


def sqlite_read(conn: sqlite3.Connection, row: int) -> tuple[int, int]:
    value, version = conn.execute(
        "SELECT value, version FROM counters WHERE id = ?", (row,)
    ).fetchone()
    return value, version


def sqlite_optimistic(conn: sqlite3.Connection, row: int) -> bool:
    value, version = sqlite_read(conn, row)
    cursor = conn.execute(
        "UPDATE counters SET value = ?, version = version + 1 WHERE id = ? AND version = ?",
        (value + 1, row, version),
    )
    return cursor.rowcount == 1


def sqlite_in_transaction(begin: str) -> Callable[[sqlite3.Connection, int], bool]:
    def update(conn: sqlite3.Connection, row: int) -> bool:
        conn.execute(begin)
        try:
            value, version = sqlite_read(conn, row)
            conn.execute(
                "UPDATE counters SET value = ?, version = ? WHERE id = ?",
                (value + 1, version + 1, row),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return True

    return update


def sqlite_atomic(conn: sqlite3.Connection, row: int) -> bool:
    conn.execute(
        "UPDATE counters SET value = value + 1, version = version + 1 WHERE id = ?", (row,)
    )
    return True


SQLITE_UPDATES: dict[str, Callable[[sqlite3.Connection, int], bool]] = {
    "optimistic": sqlite_optimistic,
    "pessimistic": sqlite_in_transaction("BEGIN IMMEDIATE"),
    "atomic": sqlite_atomic,
    "deferred": sqlite_in_transaction("BEGIN"),
}


def sqlite_writer(
    path: str, strategy: str, workload: str, seed: int, start: float, end: float
) -> Tally:
    """One writer's share of a round; top level so that a process pool can run it."""
    update, tally, pick = SQLITE_UPDATES[strategy], Tally(), picker(workload, seed)
    conn = sqlite_connect(path)
    try:
        time.sleep(max(start - time.monotonic(), 0))
        while time.monotonic() < end:
            row, began = pick(), time.monotonic()
            while True:
                try:
                    if update(conn, row):
                        break
                    tally.retries += 1
                except sqlite3.OperationalError as exc:
                    if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                        raise
                    tally.aborts += 1
            tally.latencies.append(time.monotonic() - began)
            tally.updates += 1
    finally:
        conn.close()
    tally.finished = time.monotonic()
    return tally


def sqlite_reset(path: str) -> None:
    conn = sqlite_connect(path)
    try:
        conn.execute("DROP TABLE IF EXISTS counters")
        conn.execute(
            "CREATE TABLE counters (id INTEGER PRIMARY KEY, value INTEGER NOT NULL,"
            " version INTEGER NOT NULL)"
        )
        conn.executemany(
            "INSERT INTO counters VALUES (?, 0, 0)", [(i,) for i in range(1, ROWS + 1)]
        )
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def sqlite_cells(opts: Options) -> list[Cell]:
    cells = []
    strategies = STRATEGIES + SQLITE_ONLY
    with page.sqlite_database("locking") as url:
        path = url.removeprefix("sqlite:///")
        for writers in opts.writers:
            with pool_of(opts.sqlite_writers, writers) as pool:
                for workload in WORKLOADS:
                    by = {s: Cell("sqlite", workload, s, writers) for s in strategies}
                    for strategy in turns(strategies, opts.rounds):
                        by[strategy].rounds.append(
                            sqlite_round(pool, path, workload, strategy, writers, opts)
                        )
                    cells += shown(by.values())
    return cells


def sqlite_round(
    pool: Executor, path: str, workload: str, strategy: str, writers: int, opts: Options
) -> Round:
    sqlite_reset(path)
    start = time.monotonic() + START_MARGIN
    end = start + opts.seconds
    futures = [
        pool.submit(sqlite_writer, path, strategy, workload, seed, start, end)
        for seed in range(writers)
    ]
    tallies = [f.result() for f in futures]
    conn = sqlite_connect(path)
    try:
        (counted,) = conn.execute("SELECT sum(value) FROM counters").fetchone()
    finally:
        conn.close()
    return Round(max(t.finished for t in tallies) - start, tallies, counted)


def pool_of(kind: str, size: int) -> Executor:
    """`size` processes or threads, all started (so that none starts on the clock)."""
    pool: Executor = ProcessPoolExecutor(size) if kind == "processes" else ThreadPoolExecutor(size)
    list(pool.map(time.sleep, [0.2] * size))
    return pool


def shown(cells: Iterable[Cell]) -> list[Cell]:
    """The cells, after printing a line for each."""
    done = list(cells)
    for c in done:
        cpu = f"  client CPU {c.client_cpu:.0%}" if c.client_cpu is not None else ""
        print(
            f"  {BACKENDS[c.backend]:<10} {c.workload:<6} {c.strategy:<11} x{c.writers:<3} "
            f"{c.rate:9,.0f}/s  retries/1k {c.per_thousand('retries'):7.1f}  "
            f"aborts/1k {c.per_thousand('aborts'):7.1f}  p99 {c.latency_us(0.99):9,.0f} µs  "
            f"lost {c.lost}{cpu}",
            flush=True,
        )
    return done


# The page.

ORDER = STRATEGIES + SQLITE_ONLY
COLUMNS = ["strategy", "writers", "updates/s", "retries/1k", "aborts/1k", "p50 µs", "p99 µs"]


def report(
    cells: Sequence[Cell], opts: Options, postgres: str | None, argv: list[str]
) -> list[str]:
    lines = page.header(command_line("lab-locking", "bench.lab.locking", argv), postgres=postgres)
    lines += [
        f"Each cell: {opts.rounds} round(s) of {opts.seconds:g} s, each on a fresh table of "
        f"{ROWS:,} counters; SQLite writers were {opts.sqlite_writers}. updates/s is the "
        "median over rounds; latency is one successful update, its retries included, over "
        "all rounds; retries and aborts are per 1,000 successful updates; lost is updates "
        "the writers counted minus the sum of the counters.",
        "",
    ]
    for backend in opts.backends:
        client = ["client CPU %"] if backend == "postgresql" else []
        for workload in WORKLOADS:
            group = sorted(
                (c for c in cells if c.backend == backend and c.workload == workload),
                key=lambda c: (ORDER.index(c.strategy), c.writers),
            )
            where = "every update on row 1" if workload == "hot" else f"a random row of {ROWS:,}"
            lines += [f"**{BACKENDS[backend]}, {workload} ({where})**", ""]
            lines += page.table([*COLUMNS, *client, "lost"], [row(c) for c in group])
            lines.append("")
    lines += [
        "**Who wins**: of the three, most updates/s and lowest p99; then of the two that "
        "read before they write, most updates/s. In brackets, how far ahead the winner is: "
        "its updates/s over the next one's, or the next one's p99 over its own.",
        "",
    ]
    lines += page.table(
        ["backend", "workload", "writers", "most updates/s", "lowest p99", "read-then-write"],
        winners(cells, opts.backends),
    )
    return lines


def row(c: Cell) -> list[object]:
    client = [] if c.client_cpu is None else [round(100 * c.client_cpu)]
    return [
        c.strategy, c.writers, round(c.rate), c.per_thousand("retries"), c.per_thousand("aborts"),
        c.latency_us(0.5), c.latency_us(0.99), *client, c.lost,
    ]  # fmt: skip


def winners(cells: Sequence[Cell], backends: Sequence[str]) -> list[list[object]]:
    groups: dict[tuple[str, str, int], dict[str, Cell]] = {}
    for c in cells:
        groups.setdefault((c.backend, c.workload, c.writers), {})[c.strategy] = c
    rows: list[list[object]] = []
    for key in sorted(groups, key=lambda k: (backends.index(k[0]), k[1], k[2])):
        by = groups[key]
        contenders = [by[s] for s in STRATEGIES]
        rows.append(
            [
                BACKENDS[key[0]],
                key[1],
                key[2],
                ahead(contenders, lambda c: c.rate),
                ahead(contenders, lambda c: 1 / c.latency_us(0.99)),
                ahead([by["optimistic"], by["pessimistic"]], lambda c: c.rate),
            ]
        )
    return rows


def ahead(cells: Sequence[Cell], score: Callable[[Cell], float]) -> str:
    """The strategy with the highest score, and by what factor it leads the next one."""
    first, second = sorted(cells, key=score, reverse=True)[:2]
    return f"{first.strategy} ({score(first) / score(second):.2f}x)"


def throughput_figure(cells: Sequence[Cell], opts: Options) -> Any:
    """Updates/s against writers, a line per strategy, a panel per backend and workload."""
    fig, axes = figures.grid(
        len(opts.backends), len(WORKLOADS), width=7.5, height=3.0 * len(opts.backends)
    )
    for i, backend in enumerate(opts.backends):
        for j, workload in enumerate(WORKLOADS):
            ax = axes[i][j] if len(opts.backends) > 1 else axes[j]
            for strategy in ORDER:
                mine = sorted(
                    (c for c in cells if (c.backend, c.workload, c.strategy)
                     == (backend, workload, strategy)),
                    key=lambda c: c.writers,
                )  # fmt: skip
                if mine:
                    ax.plot([c.writers for c in mine], [c.rate for c in mine], marker="o",
                            label=strategy)  # fmt: skip
            where = "row 1 for all" if workload == "hot" else f"random row of {ROWS:,}"
            ax.set_title(f"{BACKENDS[backend]}, {workload} ({where})", loc="left", fontsize=9)
            ax.set_xscale("log", base=2)
            ax.set_xticks(list(opts.writers), [str(w) for w in opts.writers])
            ax.set_ylim(bottom=0)
            ax.yaxis.set_major_locator(MaxNLocator(4))
            # Once, where every strategy is drawn (SQLite has a fourth).
            if (backend, workload) == (opts.backends[-1], "hot"):
                ax.legend(fontsize=7)
    fig.suptitle(
        "Contended counter: updates/s by strategy (2 shared CPUs, loaded machine)",
        x=0.01, ha="left", fontsize=10,
    )  # fmt: skip
    fig.supxlabel("concurrent writers", fontsize=9)
    fig.supylabel("updates/s (median of rounds)", fontsize=9)
    return fig


def retries_figure(cells: Sequence[Cell], opts: Options) -> Any:
    """What a collision costs the writers that read first: retries and aborts per 1,000."""
    fig, ax = figures.new(
        "Hot row: failed attempts per 1,000 updates (loaded machine)",
        "concurrent writers",
        "per 1,000 successful updates",
    )
    shown_any = False
    for backend in opts.backends:
        for strategy, what in (("optimistic", "retries"), ("deferred", "aborts")):
            mine = sorted(
                (c for c in cells if (c.backend, c.workload, c.strategy)
                 == (backend, "hot", strategy)),
                key=lambda c: c.writers,
            )  # fmt: skip
            if mine:
                shown_any = True
                ax.plot([c.writers for c in mine], [c.per_thousand(what) for c in mine],
                        marker="o", label=f"{BACKENDS[backend]}, {strategy} ({what})")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(opts.writers), [str(w) for w in opts.writers])
    ax.set_ylim(bottom=0)
    if shown_any:
        ax.set_yscale("symlog", linthresh=1)
        ax.legend(fontsize=7)
    return fig


@dataclass(frozen=True)
class Options:
    seconds: float
    rounds: int
    writers: tuple[int, ...]
    backends: tuple[str, ...]
    sqlite_writers: str


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(
        prog="python -m bench.lab.locking",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, help="one round (default 0.7, quick 0.5)")
    parser.add_argument("--rounds", type=int, help="rounds per cell (default 3, quick 1)")
    parser.add_argument("--writers", help="comma-separated (default 1,4,16,64, quick 1,16)")
    parser.add_argument("--backends", default="postgresql,sqlite", help="comma-separated")
    parser.add_argument(
        "--sqlite-writers", choices=("processes", "threads"), default="processes",
        help="what runs each SQLite writer (default processes; the page says why)",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="a smoke run: short, fewer cells")
    parser.add_argument("--write", action="store_true", help="put the tables into the page")
    args = parser.parse_args(argv)
    seconds = args.seconds or (0.5 if args.quick else 0.7)
    rounds = args.rounds or (1 if args.quick else 3)
    counts = args.writers or ("1,16" if args.quick else "1,4,16,64")
    writers = tuple(int(w) for w in counts.split(","))
    backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    if not set(backends) <= set(BACKENDS) or min(writers) < 1 or seconds <= 0 or rounds < 1:
        parser.error("--backends from postgresql,sqlite; --writers, --rounds >= 1; --seconds > 0")
    opts = Options(seconds, rounds, writers, backends, args.sqlite_writers)

    cells: list[Cell] = []
    postgres = None
    try:
        for backend in backends:
            if backend == "postgresql":
                postgres = asyncio.run(page.postgres_version())
                cells += asyncio.run(pg_cells(opts))
            else:
                cells += sqlite_cells(opts)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"lab failed: {exc}", file=sys.stderr)
        return 1
    shown_argv = [arg for arg in argv if arg != "--write"]
    page.publish("locking.md", report(cells, opts, postgres, shown_argv), write=args.write)
    figures.save(throughput_figure(cells, opts), "lab/figures/locking-throughput.svg")
    figures.save(throughput_figure(cells, opts), "designs/figures/locking-throughput.svg")
    figures.save(retries_figure(cells, opts), "lab/figures/locking-retries.svg")
    figures.save(retries_figure(cells, opts), "designs/figures/locking-retries.svg")
    broken = [c for c in cells if c.lost]
    for c in broken:
        print(
            f"LOST UPDATES: {c.backend} {c.workload} {c.strategy} x{c.writers}: {c.lost:,}",
            file=sys.stderr,
        )
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
