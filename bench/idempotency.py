"""What an Idempotency-Key costs a POST: keyed against unkeyed creates, in one run.

    python -m bench.idempotency [--requests 400] [--rounds 5] [--backends sqlite,postgresql]
                                [--no-record]

Each backend gets a fresh database (a SQLite file; a PostgreSQL database created for
the run on KURZ_BENCH_PG, default the test server, and dropped after). kurz runs in
this process under httpx's ASGI transport, so the figures are kurz's own work plus the
database's, with no HTTP server or network in between; that makes the key's share as
large as it can be. Per round, in alternating order:

- unkeyed: `--requests` POST /api/v1/links without a key;
- keyed: as many with a new key each (every one runs and stores its response);
- replayed: as many with one key and one body (every one after the first is a replay).

keyed/unkeyed is the ratio of creates per second within a round, median over rounds.
SQL statements per request are counted on the engine: they do not vary with noise.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import event

from bench import figures, harness
from bench.harness import BenchError, cpu_model, source_state
from kurz.app import create_app
from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate
from kurz.bootstrap import build
from kurz.clock import system_clock, utcnow
from kurz.config import Settings
from kurz.db import READ_COMMITTED, Database

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MODES = ("unkeyed", "keyed", "replayed")
GOAL = 0.30  # a keyed POST costs under 30% more than an unkeyed one


@dataclass
class Figures:
    rates: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MODES})
    statements: dict[str, float] = field(default_factory=dict)

    def ratio(self) -> float:
        pairs = zip(self.rates["keyed"], self.rates["unkeyed"], strict=True)
        return statistics.median(k / u for k, u in pairs)


class Statements:
    """Counts the SQL statements an engine executes."""

    def __init__(self, db: Database) -> None:
        self.count = 0

        def counted(*_: Any) -> None:
            self.count += 1

        event.listen(db.engine.sync_engine, "before_cursor_execute", counted)


async def measure(url: str, opts: harness.BackendRun) -> Figures:
    settings = Settings(
        database_url=url,
        ratelimit_api="off",
        ratelimit_redirect="off",
        ratelimit_auth_fail="off",
        grpc_port=0,
    )
    app = create_app(build(settings))
    figures = Figures()
    async with app.router.lifespan_context(app):
        db: Database = app.state.kurz.db
        async with db.write(READ_COMMITTED) as conn:
            created = await key_queries.create(
                conn=conn, key_in=ApiKeyCreate(name="bench"), now=utcnow(system_clock)
            )
        statements = Statements(db)
        transport = httpx.ASGITransport(app=app)
        auth = {"Authorization": f"Bearer {created.secret}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://b", headers=auth) as c:

            async def post(headers: dict[str, str]) -> None:
                response = await c.post(
                    "/api/v1/links", json={"url": "https://example.com/b", "tags": ["t"]},
                    headers=headers,
                )  # fmt: skip
                if response.status_code != 201:
                    raise BenchError(f"POST answered {response.status_code}: {response.text}")

            async def batch(mode: str) -> float:
                one = f'"{uuid.uuid4()}"'
                keys = [
                    {} if mode == "unkeyed" else {"Idempotency-Key": one if mode == "replayed"
                                                  else f'"{uuid.uuid4()}"'}
                    for _ in range(opts.requests)
                ]  # fmt: skip
                if mode == "replayed":
                    await post(keys[0])  # stored once; every timed one replays it
                before = statements.count
                start = time.perf_counter()
                for headers in keys:
                    await post(headers)
                elapsed = time.perf_counter() - start
                figures.statements[mode] = (statements.count - before) / opts.requests
                return opts.requests / elapsed

            for mode in MODES:  # warm-up: connections, caches, code paths
                await batch(mode)
            for round_ in range(opts.rounds):
                order = MODES if round_ % 2 == 0 else MODES[::-1]
                for mode in order:
                    figures.rates[mode].append(await batch(mode))
                print(
                    f"  round {round_ + 1}: "
                    + ", ".join(f"{m} {figures.rates[m][-1]:,.0f}/s" for m in MODES),
                    flush=True,
                )
    return figures


async def run_backend(backend: str, opts: harness.BackendRun) -> Figures:
    async with harness.migrated_database(backend, "idem") as url:
        return await measure(url, opts)


def report(opts: harness.BackendRun, results: dict[str, Figures]) -> list[str]:
    lines = [
        f"- machine: {os.cpu_count()} CPUs, {cpu_model()}, Python {sys.version.split()[0]}; "
        f"{source_state()}",
        f"- {opts.rounds} round(s) of {opts.requests:,} sequential POSTs per mode, "
        "modes alternating order; in process (httpx ASGI transport), no rate limits",
        "",
        "| backend | unkeyed creates/s | keyed creates/s | replays/s | keyed/unkeyed "
        "| SQL statements per request (unkeyed / keyed / replayed) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for backend, f in results.items():
        med = {m: statistics.median(f.rates[m]) for m in MODES}
        stmts = " / ".join(f"{f.statements[m]:.1f}" for m in MODES)
        lines.append(
            f"| {backend} | {med['unkeyed']:,.0f} | {med['keyed']:,.0f} | "
            f"{med['replayed']:,.0f} | {f.ratio():.3f} | {stmts} |"
        )
    lines.append("")
    for backend, f in results.items():
        overhead = 1 / f.ratio() - 1
        met = "met" if overhead < GOAL else "NOT met"
        lines.append(
            f"- {backend}: a keyed POST costs {overhead:.0%} more than an unkeyed one "
            f"(goal < {GOAL:.0%}: {met})"
        )
    return lines


def bars(
    title: str,
    unit: str,
    rates: dict[str, dict[str, float]],
    statements: dict[str, dict[str, float]],
) -> Figure:
    """Two panels of bars grouped by backend, one bar per mode: the median rate
    (wall clock) and the SQL statements per request (counted)."""
    fig, (left, right) = figures.grid(1, 2, width=8.0, height=3.4)
    fig.suptitle(title, x=0.01, ha="left", fontsize=10)
    backends = list(rates)
    modes = list(next(iter(rates.values())))
    width = 0.8 / len(modes)
    for ax, values, label in (
        (left, rates, f"{unit} per second (median, wall clock)"),
        (right, statements, "SQL statements per request (counted)"),
    ):
        for i, mode in enumerate(modes):
            xs = [j + (i - (len(modes) - 1) / 2) * width for j in range(len(backends))]
            heights = [values[b][mode] for b in backends]
            drawn = ax.bar(xs, heights, width, label=mode)
            ax.bar_label(drawn, fmt="{:,.0f}" if values is rates else "{:.1f}", fontsize=7)
        ax.set_xticks(range(len(backends)), backends)
        ax.set_xlabel("backend")
        ax.set_ylabel(label)
        ax.set_ylim(0, max(v for by in values.values() for v in by.values()) * 1.3)
    left.legend(loc="upper left", fontsize=8, ncol=len(modes))
    return fig


def draw(results: dict[str, Figures]) -> None:
    rates = {b: {m: statistics.median(f.rates[m]) for m in MODES} for b, f in results.items()}
    statements = {b: dict(f.statements) for b, f in results.items()}
    fig = bars(
        "POST /api/v1/links with and without an Idempotency-Key, in process "
        "(shared 2-CPU machine, loaded)", "creates", rates, statements,
    )  # fmt: skip
    figures.save(fig, "designs/figures/idempotency-cost.svg")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    opts = harness.backend_run(
        argv, prog="python -m bench.idempotency", doc=__doc__, requests=400, unit="POSTs"
    )
    results = harness.each_backend(opts, run_backend)
    if results is None:
        return 1
    draw(results)
    harness.publish(
        "Idempotency-Key", report(opts, results),
        target="bench-idempotency", module="bench.idempotency", argv=argv, keep=not opts.no_record,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
