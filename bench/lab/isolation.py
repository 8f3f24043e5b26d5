"""Lab 3: isolation levels, and the lost update and write skew they allow or prevent.

    python -m bench.lab.isolation [--trials 500] [--clients 8]
                                  [--backends sqlite,postgresql] [--quick] [--write]

Two transactions kurz could have written. A visitor of a link capped at K visits reads
`visits` and then writes `visits = read + 1` (a lost update lets more than K through).
An admin revokes their own API key after counting that another admin key is active
(a write skew: two admins do it at once and no admin is left). Each runs in variants:
PostgreSQL at READ COMMITTED, REPEATABLE READ and SERIALIZABLE, the READ COMMITTED
fixes (a row lock, one statement), and SQLite with a plain BEGIN or BEGIN IMMEDIATE.

Every variant runs twice:

- one fixed interleaving of two connections, driven step by step: both BEGIN, T1
  reads, T2 reads, T1 writes and commits, T2 writes and commits. A step that has not
  finished within 0.3 s is blocked; the driver goes on with the other transaction;
- `--trials` trials of `--clients` concurrent clients, each running the transaction
  once on fresh rows. A transaction the database fails (SQLSTATE 40001 or 40P01,
  SQLITE_BUSY*) is rolled back and run again at once, as an application would; the
  failures are counted, and a trial is wrong if its final rows break the rule.

PostgreSQL clients are coroutines, one asyncpg connection each. SQLite clients are
sqlite3 connections each confined to its own thread (WAL, synchronous=NORMAL,
busy_timeout 10 s, as kurz configures it), driven by the same coroutines. The run
exits 1 if a variant documented to prevent its anomaly shows it, or if the fixed
interleaving does not give the outcome the page describes. Page: docs/lab/isolation.md.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import re
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import asyncpg

from bench import figures
from bench.harness import command_line
from bench.lab import page

Row = tuple[Any, ...]
State = tuple[int, ...]
Scenario = Literal["lost update", "write skew"]
# prevented: never, in either run; anomaly: the fixed interleaving shows it;
# race: only concurrent statements can show it (one statement has no gap to interleave).
Expect = Literal["prevented", "anomaly", "race"]

BACKENDS = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}
FAILURE_CODES = {
    "postgresql": ("40001", "40P01"),
    "sqlite": ("SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT"),
}
BUSY_TIMEOUT_MS = 10_000  # kurz's, src/kurz/db/engine.py
BLOCKED_AFTER = 0.3  # s: a step of the fixed interleaving still running by then is blocked
TRIAL_TIMEOUT = 60.0


class Session(Protocol):
    """One client's connection, the same calls on either backend ($1 placeholders)."""

    async def execute(self, sql: str) -> None: ...
    async def fetch(self, sql: str, *args: object) -> list[Row]: ...
    async def rollback(self) -> None: ...
    async def close(self) -> None: ...


class PostgresSession:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    @classmethod
    async def open(cls, url: str) -> PostgresSession:
        return cls(await asyncpg.connect(url, timeout=5))

    async def execute(self, sql: str) -> None:
        await self._conn.execute(sql)

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        return [tuple(row) for row in await self._conn.fetch(sql, *args)]

    async def rollback(self) -> None:
        if self._conn.is_in_transaction():
            await self._conn.execute("ROLLBACK")

    async def close(self) -> None:
        await self._conn.close()


class SqliteSession:
    """A sqlite3 connection that lives in a thread of its own, so clients run at once.

    sqlite3 lets go of the GIL while SQLite works and while its busy handler sleeps.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._thread = ThreadPoolExecutor(max_workers=1)
        self._conn: sqlite3.Connection | None = None

    @classmethod
    async def open(cls, path: str) -> SqliteSession:
        return cls(path)

    def _run(self, sql: str, args: tuple[object, ...]) -> list[Row]:
        if self._conn is None:
            # kurz emits BEGIN itself (isolation_level=None), so writers can ask for IMMEDIATE.
            self._conn = sqlite3.connect(self._path, isolation_level=None)
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL"):
                self._conn.execute(f"PRAGMA {pragma}")
            self._conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if sql == "ROLLBACK" and not self._conn.in_transaction:
            return []
        return self._conn.execute(re.sub(r"\$(\d+)", r"?\1", sql), args).fetchall()

    async def _call(self, sql: str, args: tuple[object, ...] = ()) -> list[Row]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._run, sql, args)

    async def execute(self, sql: str) -> None:
        await self._call(sql)

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        return await self._call(sql, args)

    async def rollback(self) -> None:
        await self._call("ROLLBACK")

    async def close(self) -> None:
        if self._conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._conn.close)
        self._thread.shutdown()


def failure(exc: BaseException) -> str | None:
    """The code of a failure that a retry can get past, or None."""
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate: str = exc.sqlstate
        return sqlstate if sqlstate in FAILURE_CODES["postgresql"] else None
    if (
        isinstance(exc, sqlite3.OperationalError)
        and exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
    ):
        return exc.sqlite_errorname  # the extended code's name says which kind
    return None


# What the two rules read and write: two columns each of kurz's `links` and `api_keys`
# (src/kurz/db/tables.py).
SCHEMA = (
    "CREATE TABLE links (id integer PRIMARY KEY, visits integer NOT NULL,"
    " max_visits integer NOT NULL)",
    "CREATE TABLE api_keys (id integer PRIMARY KEY, is_admin boolean NOT NULL,"
    " revoked_at timestamptz)",
)
LINK = "SELECT visits, max_visits FROM links WHERE id = 1"
ADMINS = "SELECT id FROM api_keys WHERE is_admin AND revoked_at IS NULL ORDER BY id"
REVOKE = "UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP WHERE id = $1 AND revoked_at IS NULL"
REVOKE_IN_ONE = (
    "UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP WHERE id = $1 AND revoked_at IS NULL"
    " AND (SELECT count(*) FROM api_keys WHERE is_admin AND revoked_at IS NULL) >= 2"
    " RETURNING id"
)


async def read_link(s: Session, client: int) -> State:
    ((visits, cap),) = await s.fetch(LINK)
    return (visits, cap)


async def read_link_locked(s: Session, client: int) -> State:
    ((visits, cap),) = await s.fetch(LINK + " FOR UPDATE")
    return (visits, cap)


async def write_read_plus_one(s: Session, client: int, state: State) -> bool:
    visits, cap = state
    if visits >= cap:
        return False
    await s.fetch("UPDATE links SET visits = $1 WHERE id = 1", visits + 1)
    return True


async def no_read(s: Session, client: int) -> State:
    return ()


async def count_visit(s: Session, client: int, state: State) -> bool:
    # kurz's count_visit (src/kurz/links/queries.py), minus the deleted_at test.
    taken = await s.fetch(
        "UPDATE links SET visits = visits + 1 WHERE id = 1 AND visits < max_visits RETURNING id"
    )
    return bool(taken)


async def count_admins(s: Session, client: int) -> State:
    return (len(await s.fetch(ADMINS)),)


async def count_admins_locked(s: Session, client: int) -> State:
    return (len(await s.fetch(ADMINS + " FOR UPDATE")),)


async def revoke_if_another(s: Session, client: int, state: State) -> bool:
    (admins,) = state
    if admins < 2:
        return False
    await s.fetch(REVOKE, client + 1)
    return True


async def revoke_in_one(s: Session, client: int, state: State) -> bool:
    return bool(await s.fetch(REVOKE_IN_ONE, client + 1))


async def reset(s: Session, scenario: Scenario, clients: int) -> None:
    """Fresh rows for one trial: a link capped at clients // 2, or `clients` admin keys."""
    if scenario == "lost update":
        await s.fetch("UPDATE links SET visits = 0, max_visits = $1 WHERE id = 1", clients // 2)
    else:
        await s.fetch(
            "UPDATE api_keys SET revoked_at ="
            " CASE WHEN id <= $1 THEN NULL ELSE CURRENT_TIMESTAMP END",
            clients,
        )


@dataclass(frozen=True)
class Verdict:
    anomaly: bool
    final: str
    beyond_cap: int = 0  # redirects past max_visits
    lost: int = 0  # visits counted to a visitor but missing from the row


async def judge(s: Session, scenario: Scenario, granted: int) -> Verdict:
    """Whether the rows a trial left break its rule, given how many clients were granted."""
    if scenario == "lost update":
        ((visits, cap),) = await s.fetch(LINK)
        beyond, lost = max(0, granted - cap), granted - visits
        final = f"{granted} redirected, visits = {visits} (cap {cap})"
        return Verdict(beyond > 0 or lost != 0, final, beyond, lost)
    left = len(await s.fetch(ADMINS))
    if left > 1:
        raise RuntimeError(f"{left} admin keys left: a revocation was refused that was allowed")
    return Verdict(left == 0, f"{left} admin key{'' if left == 1 else 's'} active")


@dataclass(frozen=True)
class Variant:
    scenario: Scenario
    transaction: str
    level: str
    begin: str
    read: Callable[[Session, int], Awaitable[State]]
    write: Callable[[Session, int, State], Awaitable[bool]]
    expect: Expect


LU_READ = "SELECT visits; UPDATE visits = read + 1"
LU_LOCK = "SELECT visits FOR UPDATE; UPDATE visits = read + 1"
LU_ONE = "one conditional UPDATE (kurz)"
WS_READ = "count admins; revoke own key"
WS_LOCK = "count admins FOR UPDATE; revoke own key"
WS_ONE = "one UPDATE, the count in its WHERE"
RC, RR, SER = "READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"


def _variant(scenario: Scenario, name: str, level: str, expect: Expect) -> Variant:
    steps = {
        LU_READ: (read_link, write_read_plus_one),
        LU_LOCK: (read_link_locked, write_read_plus_one),
        LU_ONE: (no_read, count_visit),
        WS_READ: (count_admins, revoke_if_another),
        WS_LOCK: (count_admins_locked, revoke_if_another),
        WS_ONE: (no_read, revoke_in_one),
    }
    read, write = steps[name]
    begin = level if level.startswith("BEGIN") else f"BEGIN ISOLATION LEVEL {level}"
    return Variant(scenario, name, level, begin, read, write, expect)


VARIANTS = {
    "postgresql": (
        _variant("lost update", LU_READ, RC, "anomaly"),
        _variant("lost update", LU_READ, RR, "prevented"),
        _variant("lost update", LU_READ, SER, "prevented"),
        _variant("lost update", LU_LOCK, RC, "prevented"),
        _variant("lost update", LU_ONE, RC, "prevented"),
        _variant("write skew", WS_READ, RC, "anomaly"),
        _variant("write skew", WS_READ, RR, "anomaly"),
        _variant("write skew", WS_READ, SER, "prevented"),
        _variant("write skew", WS_LOCK, RC, "prevented"),
        _variant("write skew", WS_ONE, RC, "race"),
    ),
    "sqlite": (
        _variant("lost update", LU_READ, "BEGIN", "prevented"),
        _variant("lost update", LU_READ, "BEGIN IMMEDIATE", "prevented"),
        _variant("lost update", LU_ONE, "BEGIN IMMEDIATE", "prevented"),
        _variant("write skew", WS_READ, "BEGIN", "prevented"),
        _variant("write skew", WS_READ, "BEGIN IMMEDIATE", "prevented"),
    ),
}


Step = Literal["begin", "read", "write", "commit"]
SCHEDULE: tuple[tuple[int, Step], ...] = (
    (0, "begin"),
    (1, "begin"),
    (0, "read"),
    (1, "read"),
    (0, "write"),
    (0, "commit"),
    (1, "write"),
    (1, "commit"),
)
STEP_NAMES = {"begin": "BEGIN", "read": "its read", "write": "its write", "commit": "COMMIT"}
SCHEDULE_SHOWN = ", ".join(
    f"T{who + 1} {STEP_NAMES[step].removeprefix('its ')}" for who, step in SCHEDULE
)
OUTCOMES = {
    "lost update": ("refuses the visit", "counts the visit"),
    "write skew": ("keeps its key", "revokes its key"),
}


class Walker:
    """One transaction of the fixed interleaving, run a step at a time."""

    def __init__(self, session: Session, variant: Variant, client: int) -> None:
        self.session, self.variant, self.client = session, variant, client
        self.task: asyncio.Task[None] | None = None
        self.state: State | None = None
        self.granted = self.committed = False
        self.blocked: list[Step] = []
        self.failed: str | None = None

    def submit(self, step: Step) -> asyncio.Task[None]:
        self.task = asyncio.create_task(self._after(self.task, step))
        return self.task

    async def _after(self, previous: asyncio.Task[None] | None, step: Step) -> None:
        if previous is not None:
            await previous
        if self.failed is not None:
            return
        start = time.perf_counter()
        try:
            await self._run(step)
        except (asyncpg.PostgresError, sqlite3.OperationalError) as exc:
            code = failure(exc)
            if code is None:
                raise
            took = (time.perf_counter() - start) * 1000
            # PostgreSQL says why (its first line); SQLite's name for the code says it all.
            said = f" ({str(exc).splitlines()[0]})" if code[:1].isdigit() else ""
            self.failed = f"fails at {STEP_NAMES[step]} after {took:.0f} ms: {code}{said}"
            await self.session.rollback()

    async def _run(self, step: Step) -> None:
        variant, session = self.variant, self.session
        if step == "begin":
            await session.execute(variant.begin)
        elif step == "read":
            self.state = await variant.read(session, self.client)
        elif step == "write":
            self.granted = await variant.write(session, self.client, self.state or ())
        else:
            await session.execute("COMMIT")
            self.committed = True

    def fate(self) -> str:
        said = [f"blocks at {STEP_NAMES[step]}" for step in self.blocked]
        if self.failed is not None:
            said.append(self.failed)
        elif self.committed:
            said += [OUTCOMES[self.variant.scenario][self.granted], "commits"]
        return "; ".join(said)

    def read(self) -> str:
        if not self.state:
            return "—"
        if self.variant.scenario == "lost update":
            return f"visits = {self.state[0]}"
        return f"{self.state[0]} admin{'' if self.state[0] == 1 else 's'}"


@dataclass(frozen=True)
class Fixed:
    t1: Walker
    t2: Walker
    verdict: Verdict


async def interleave(coordinator: Session, pair: Sequence[Session], variant: Variant) -> Fixed:
    """Run SCHEDULE once; a step still running after BLOCKED_AFTER is blocked."""
    await reset(coordinator, variant.scenario, 2)
    walkers = (Walker(pair[0], variant, 0), Walker(pair[1], variant, 1))
    for who, step in SCHEDULE:
        walker = walkers[who]
        queued = walker.task is not None and not walker.task.done()
        task = walker.submit(step)
        if queued:  # behind its own blocked step: not blocked itself
            continue
        done, _ = await asyncio.wait({task}, timeout=BLOCKED_AFTER)
        if not done:
            walker.blocked.append(step)
    tasks = [walker.task for walker in walkers if walker.task is not None]
    await asyncio.wait_for(asyncio.gather(*tasks), TRIAL_TIMEOUT)
    granted = sum(walker.granted for walker in walkers if walker.committed)
    return Fixed(*walkers, await judge(coordinator, variant.scenario, granted))


@dataclass
class Tally:
    """What the clients of one variant did over all its trials."""

    trials: int = 0
    wrong: int = 0
    beyond_cap: int = 0
    lost: int = 0
    commits: int = 0
    seconds: float = 0.0
    failures: Counter[str] = field(default_factory=Counter)
    slowest_failure: float = 0.0  # s from BEGIN to the failure, over all failed attempts
    slowest: float = 0.0  # s from the first BEGIN to the COMMIT, over all transactions


async def transact(session: Session, variant: Variant, client: int, tally: Tally) -> bool:
    """Run the transaction until it commits; whether the client was granted its write."""
    first = time.perf_counter()
    while True:
        start = time.perf_counter()
        try:
            await session.execute(variant.begin)
            granted = await variant.write(session, client, await variant.read(session, client))
            await session.execute("COMMIT")
        except (asyncpg.PostgresError, sqlite3.OperationalError) as exc:
            code = failure(exc)
            if code is None:
                raise
            tally.failures[code] += 1
            tally.slowest_failure = max(tally.slowest_failure, time.perf_counter() - start)
            await session.rollback()
        else:
            tally.commits += 1
            tally.slowest = max(tally.slowest, time.perf_counter() - first)
            return granted


async def stress(
    coordinator: Session, sessions: Sequence[Session], variant: Variant, trials: int
) -> Tally:
    tally = Tally()
    for _ in range(trials):
        await reset(coordinator, variant.scenario, len(sessions))
        start = time.perf_counter()
        clients = (transact(s, variant, i, tally) for i, s in enumerate(sessions))
        granted = await asyncio.wait_for(asyncio.gather(*clients), TRIAL_TIMEOUT)
        tally.seconds += time.perf_counter() - start
        verdict = await judge(coordinator, variant.scenario, sum(granted))
        tally.trials += 1
        tally.wrong += verdict.anomaly
        tally.beyond_cap += verdict.beyond_cap
        tally.lost += verdict.lost
    return tally


@dataclass(frozen=True)
class Result:
    backend: str
    variant: Variant
    fixed: Fixed
    tally: Tally


async def measure(
    backend: str, connect: Callable[[], Awaitable[Session]], clients: int, trials: int
) -> list[Result]:
    coordinator = await connect()
    sessions = [await connect() for _ in range(clients)]
    try:
        for sql in SCHEMA:
            await coordinator.execute(sql)
        await coordinator.execute("INSERT INTO links VALUES (1, 0, 0)")
        for key in range(1, clients + 1):
            await coordinator.fetch("INSERT INTO api_keys VALUES ($1, TRUE, NULL)", key)
        results = []
        for variant in VARIANTS[backend]:
            fixed = await interleave(coordinator, sessions, variant)
            tally = await stress(coordinator, sessions, variant, trials)
            results.append(Result(backend, variant, fixed, tally))
            print(
                f"{BACKENDS[backend]}, {variant.scenario}, {variant.transaction}, "
                f"{variant.level}: fixed {'anomaly' if fixed.verdict.anomaly else 'ok'}, "
                f"{tally.wrong}/{tally.trials} wrong, {dict(tally.failures)}, "
                f"{tally.seconds:.1f} s",
                file=sys.stderr,
            )
        return results
    finally:
        for session in [coordinator, *sessions]:
            await session.close()


async def run(backends: Sequence[str], clients: int, trials: int) -> list[Result]:
    results: list[Result] = []
    connect: Callable[[], Awaitable[Session]]
    for backend in backends:
        if backend == "postgresql":
            async with page.postgres_database("isolation") as url:
                connect = functools.partial(PostgresSession.open, url)
                results += await measure(backend, connect, clients, trials)
        else:
            with page.sqlite_database("isolation") as url:
                connect = functools.partial(SqliteSession.open, url.removeprefix("sqlite:///"))
                results += await measure(backend, connect, clients, trials)
    return results


def contradictions(results: Sequence[Result]) -> list[str]:
    """Where the figures disagree with what the page says about them."""
    found = []
    for r in results:
        v, fixed = r.variant, r.fixed
        name = f"{BACKENDS[r.backend]}, {v.scenario}, {v.transaction}, {v.level}"
        if fixed.t1.blocked or not fixed.t1.committed:
            found.append(f"{name}: T1 did not go straight through ({fixed.t1.fate()})")
        if v.expect == "prevented" and (fixed.verdict.anomaly or r.tally.wrong):
            shown = "the fixed interleaving shows it, " if fixed.verdict.anomaly else ""
            found.append(
                f"{name}: said to prevent it, but {shown}{r.tally.wrong} trials went wrong"
            )
        if v.expect == "anomaly" and not fixed.verdict.anomaly:
            found.append(f"{name}: the fixed interleaving did not show the anomaly")
        if v.expect == "race" and fixed.verdict.anomaly:
            found.append(f"{name}: the fixed interleaving showed an anomaly")
    return found


def fixed_table(results: Sequence[Result]) -> list[str]:
    rows = [
        [
            BACKENDS[r.backend],
            r.variant.transaction,
            r.variant.level,
            r.fixed.t2.read(),
            r.fixed.t2.fate(),
            r.fixed.verdict.final,
            r.fixed.verdict.anomaly,
        ]
        for r in results
    ]
    heads = ["Backend", "Transaction", "Isolation", "T2 read", "T2", "Final state", "Anomaly"]
    return page.table(heads, rows)


def stress_table(backend: str, scenario: Scenario, results: Sequence[Result]) -> list[str]:
    seen = {code for r in results for code in r.tally.failures}
    codes = [*FAILURE_CODES[backend], *sorted(seen - set(FAILURE_CODES[backend]))]
    lost_update = scenario == "lost update"
    heads = [
        "Transaction",
        "Isolation",
        "Trials wrong" if lost_update else "Trials with no admin left",
        *(["Redirects past the cap", "Visits lost"] if lost_update else []),
        *codes,
        "Slowest failed attempt (ms)",
        "Slowest transaction (ms)",
        "Commits/s",
    ]
    rows = [
        [
            r.variant.transaction,
            r.variant.level,
            r.tally.wrong,
            *([r.tally.beyond_cap, r.tally.lost] if lost_update else []),
            *(r.tally.failures[code] for code in codes),
            round(r.tally.slowest_failure * 1000),
            round(r.tally.slowest * 1000),
            round(r.tally.commits / r.tally.seconds),
        ]
        for r in results
    ]
    return page.table(heads, rows)


def report(results: Sequence[Result], head: list[str], clients: int, trials: int) -> list[str]:
    lines = [
        *head,
        f"Fixed interleaving: {SCHEDULE_SHOWN}. "
        f"Stress: {trials:,} trials per row, {clients} clients at once, each running the "
        f"transaction once (again after each failure); the link is capped at "
        f"{clients // 2} visits, and {clients} admin keys are active.",
    ]
    for scenario in ("lost update", "write skew"):
        title = scenario.capitalize()
        of = [r for r in results if r.variant.scenario == scenario]
        lines += ["", f"### {title}: the fixed interleaving", "", *fixed_table(of)]
        for backend in BACKENDS:
            mine = [r for r in of if r.backend == backend]
            if mine:
                lines += ["", f"### {title}: {BACKENDS[backend]}, {trials:,} trials", ""]
                lines += stress_table(backend, scenario, mine)
    return lines


SHORT = {
    LU_READ: "read; write +1", LU_LOCK: "FOR UPDATE", LU_ONE: "1 UPDATE (kurz)",
    WS_READ: "count; revoke", WS_LOCK: "FOR UPDATE", WS_ONE: "count in WHERE",
}  # fmt: skip
LEVELS = {RC: "RC", RR: "RR", SER: "SER", "BEGIN": "BEGIN", "BEGIN IMMEDIATE": "IMM"}


def anomalies_figure(results: Sequence[Result], clients: int, trials: int) -> Any:
    """Per variant, the share of its trials whose final rows broke the rule."""
    fig, axes = figures.grid(1, 2, width=7.5, height=3.4)
    for col, scenario in enumerate(("lost update", "write skew")):
        of = [r for r in results if r.variant.scenario == scenario][::-1]
        ax = axes[col]
        ys = list(range(len(of)))
        ax.barh(ys, [100 * r.tally.wrong / r.tally.trials for r in of], color=figures.COLORS[1])
        ax.set_yticks(
            ys,
            [f"{r.backend[:2]} {LEVELS[r.variant.level]} {SHORT[r.variant.transaction]}"
             for r in of],
            fontsize=7,
        )  # fmt: skip
        ax.set_xlim(0, 100)
        ax.set_title(scenario, loc="left", fontsize=9)
    fig.supxlabel(f"% of {trials:,} trials wrong ({clients} clients each)", fontsize=9)
    fig.suptitle(
        "Anomalies by isolation level (po PostgreSQL, sq SQLite; RC, RR, SER)",
        x=0.01, ha="left", fontsize=10,
    )  # fmt: skip
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(
        prog="python -m bench.lab.isolation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--trials", type=int, help="trials per variant (default 500, quick 100)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument("--quick", action="store_true", help="100 trials per variant")
    parser.add_argument("--write", action="store_true", help="put the tables into the page")
    args = parser.parse_args(argv)
    trials = args.trials or (100 if args.quick else 500)
    asked = {b.strip() for b in args.backends.split(",") if b.strip()}
    backends = [b for b in BACKENDS if b in asked]
    if not asked or not asked <= set(BACKENDS) or args.clients < 2 or trials < 1:
        parser.error("--backends from sqlite,postgresql; --clients >= 2; --trials >= 1")

    postgres = asyncio.run(page.postgres_version()) if "postgresql" in backends else None
    results = asyncio.run(run(backends, args.clients, trials))
    argv_shown = [arg for arg in argv if arg != "--write"]
    head = page.header(
        command_line("lab-isolation", "bench.lab.isolation", argv_shown), postgres=postgres
    )
    found = contradictions(results)
    page.publish(
        "isolation.md", report(results, head, args.clients, trials), write=args.write and not found
    )
    drawn = anomalies_figure(results, args.clients, trials)
    figures.save(drawn, "lab/figures/isolation-anomalies.svg")
    drawn = anomalies_figure(results, args.clients, trials)
    figures.save(drawn, "designs/figures/isolation-anomalies.svg")
    for problem in found:
        print(f"contradiction: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
