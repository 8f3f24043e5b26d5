"""Server CPU per page of the web app, for a user with 1,000 links and 90 days of clicks.

    python -m bench.web_pages [--requests 100] [--rounds 5] [--backends sqlite,postgresql]
                              [--no-record]

Each backend gets a fresh database (a SQLite file; a PostgreSQL database made on
KURZ_BENCH_PG, default the test server, and dropped after), seeded by bench/stats_seed.py
as the stats bench is: one user owning 1,000 links (one busy link, "hot", with 1,000,000
clicks, and 999 quieter ones, the nth with 300,000/n), with 90 days of hourly, daily and
breakdown rollups for every link: each link has a row on every one of those days; and the
per-owner rollups those rows sum to. Besides: an admin, 60 members and 50 dead jobs, for
the admin pages. PostgreSQL is then vacuumed and analysed, as autovacuum would have done.

kurz runs in this process under httpx's ASGI transport, on a clock set to the last of
those 90 days, and the owner and the admin sign in (POST /api/v1/session). A busy
link's stats page is measured as the repeated view finds it (the days before today
summed and kept, ADR 0020) and as a first view (forgotten before each request). Per
round, each page of
PAGES is asked `--requests` times in a row; a page's figure is the CPU time the
server spent over the requests, median over the rounds: this process's
(time.process_time: every thread, so SQLite's work too) plus, on PostgreSQL, that of
the server processes serving the run's database (their /proc counters, by the
database name in their titles). It includes the client's side of each request (httpx
and the ASGI transport), so it overstates kurz's own share; the account page, a
signed-in page with no query of its own, shows that floor. SQL statements per request
are counted on the engine.

A page to add is one line in PAGES.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import sqlalchemy as sa

from bench import harness
from bench.harness import BenchError, cpu_model, source_state
from bench.idempotency import Statements
from bench.stats_seed import (
    END,
    HOT_CODE,
    Generator,
    check,
    insert_day,
    make_links,
    owner_rollups,
)
from kurz.accounts import Passwords, users
from kurz.analytics.settled import SettledSums
from kurz.app import create_app
from kurz.bootstrap import build
from kurz.config import Settings
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import users as users_table
from kurz.jobs import JobStore

# A link in the middle of the quiet ones (bench/stats_seed.py names them q00000...).
QUIET_CODE = "q00499"
# Besides the owner: an admin, and members for the admin's users page.
ADMIN_EMAIL = "admin@bench.test"
ADMIN_USERS = 60
DEAD_JOBS = 50


@dataclass(frozen=True, slots=True)
class Page:
    """A page to measure: `what` it is, its path, whether an admin asks for it (the
    others: the links' owner, a member), and whether each request is a first view of
    the busy link's stats (the settled days' sums forgotten before it, ADR 0020)."""

    what: str
    path: str
    admin: bool = False
    first_view: bool = False


# Each is measured alike; add a page here.
PAGES: list[Page] = [
    Page("account page (the frame alone)", "/_/account"),
    Page("dashboard", "/_/dashboard"),
    Page("links, first page of 50", "/_/links"),
    Page("links, a search", "/_/links?q=example"),
    Page("a link's page", f"/_/links/{QUIET_CODE}"),
    Page("a link's edit form", f"/_/links/{QUIET_CODE}/edit"),
    Page("new link form", "/_/new"),
    Page("API keys", "/_/keys"),
    Page("stats, 30 days by day (default)", f"/_/links/{HOT_CODE}/stats"),
    Page("stats, 90 days by day", f"/_/links/{HOT_CODE}/stats?days=90"),
    Page(
        "stats, 90 days by day, a first view (nothing kept)",
        f"/_/links/{HOT_CODE}/stats?days=90",
        first_view=True,
    ),
    Page("stats, 7 days by hour", f"/_/links/{HOT_CODE}/stats?by=hour&days=7"),
    Page(
        "stats, 30 days by hour (a line of 720 points)",
        f"/_/links/{HOT_CODE}/stats?by=hour&days=30",
    ),
    Page("stats of a quiet link (the 500th), 30 days by day", f"/_/links/{QUIET_CODE}/stats"),
    Page("admin: index", "/_/admin", admin=True),
    Page(f"admin: users (first page of {ADMIN_USERS + 2})", "/_/admin/users", admin=True),
    Page("admin: domains", "/_/admin/domains", admin=True),
    Page(f"admin: dead jobs ({DEAD_JOBS})", "/_/admin/jobs?state=dead", admin=True),
    Page("admin: system", "/_/admin/system", admin=True),
]
QUIET_LINKS = 999
HOT_CLICKS = 1_000_000
PASSWORD = "bench-password-1"  # noqa: S105
# Noon of the last seeded day: the last 90 days are the seeded ones.
NOW = END.timestamp() - 12 * 3600


def backends_cpu(database: str) -> float:
    """CPU seconds used so far by the PostgreSQL processes serving `database` (their
    titles read "postgres: USER DATABASE HOST(PORT) STATE"); 0 for SQLite."""
    if not database:
        return 0.0
    ticks = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if not title.startswith("postgres: ") or f" {database} " not in title:
                continue
            fields = (proc / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue  # ended meanwhile
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Figures:
    cpu_ms: dict[str, list[float]] = field(default_factory=lambda: {p.what: [] for p in PAGES})
    # Of which the PostgreSQL server's.
    db_ms: dict[str, list[float]] = field(default_factory=lambda: {p.what: [] for p in PAGES})
    wall_ms: dict[str, list[float]] = field(default_factory=lambda: {p.what: [] for p in PAGES})
    statements: dict[str, float] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    seed_seconds: float = 0.0


async def seed(db: Database, jobs: JobStore) -> tuple[str, str]:
    """The 1,000 links and their rollups, an admin, members and dead jobs; the owner's
    email and the admin's, both with PASSWORD set."""
    principal, hot_id, quiet_ids = await make_links(db, QUIET_LINKS)
    user_id = principal.user_id
    for day in Generator(hot_id, HOT_CLICKS, quiet_ids, seed=7).days():
        await insert_day(db, day)
    await check(db, hot_id, HOT_CLICKS)
    await owner_rollups(db)
    hashed = Passwords().hash(PASSWORD)
    now = datetime.fromtimestamp(NOW, UTC)
    async with db.write(READ_COMMITTED) as conn:
        await users.set_password(conn, user_id, hashed)
        email = (
            await conn.execute(sa.select(users_table.c.email).where(users_table.c.id == user_id))
        ).scalar_one()
        await users.create(conn, email=ADMIN_EMAIL, role="admin", now=now, password_hash=hashed)
        for n in range(ADMIN_USERS):
            await users.create(conn, email=f"member{n}@bench.test", role="member", now=now)
    for n in range(DEAD_JOBS):
        await jobs.enqueue("send-report", {"n": n}, max_attempts=1)
    for job in await jobs.claim(worker="bench", limit=DEAD_JOBS, lease=60):
        await jobs.fail(job.id, worker="bench", error=f"ValueError: report {job.id}", retry_in=None)
    return str(email), ADMIN_EMAIL


async def vacuum(url: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        for table in (
            "links",
            "link_clicks_hourly",
            "link_clicks_daily",
            "link_breakdowns_daily",
            "owner_clicks_daily",
            "link_clicks_total",
        ):
            await conn.execute(f"VACUUM ANALYZE {table}")
    finally:
        await conn.close()


async def measure(url: str, opts: harness.BackendRun) -> Figures:
    settings = Settings(
        database_url=url,
        ratelimit_api="off",
        ratelimit_redirect="off",
        ratelimit_auth_fail="off",
        grpc_port=0,
        analytics=False,
        embedded_worker=False,
    )
    app = create_app(build(settings, clock=lambda: NOW))
    figures = Figures()
    async with app.router.lifespan_context(app):
        db: Database = app.state.kurz.db
        started = time.perf_counter()
        email, admin_email = await seed(db, app.state.kurz.jobs)
        if not db.is_sqlite:
            await vacuum(url)
        figures.seed_seconds = time.perf_counter() - started
        settled: SettledSums | None = app.state.kurz.stats.settled
        if settled is None:
            raise BenchError("the stats keep no settled sums")
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://b") as owner,
            httpx.AsyncClient(transport=transport, base_url="http://b") as admin,
        ):
            for browser, who in ((owner, email), (admin, admin_email)):
                signed = await browser.post(
                    "/api/v1/session", json={"email": who, "password": PASSWORD}
                )
                if signed.status_code != 204:
                    raise BenchError(f"sign-in answered {signed.status_code}: {signed.text}")
            statements = Statements(db)

            database = "" if db.is_sqlite else str(db.engine.url.database)

            async def batch(page: Page, requests: int) -> tuple[float, float, float]:
                browser = admin if page.admin else owner
                before = statements.count
                server = backends_cpu(database)
                cpu, wall = time.process_time(), time.perf_counter()
                for _ in range(requests):
                    if page.first_view:
                        settled.clear()
                    response = await browser.get(page.path)
                    if response.status_code != 200:
                        raise BenchError(f"GET {page.path} answered {response.status_code}")
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                server = backends_cpu(database) - server
                figures.statements[page.what] = (statements.count - before) / requests
                figures.bytes[page.what] = len(response.content)
                return (
                    (cpu + server) / requests * 1e3,
                    server / requests * 1e3,
                    wall / requests * 1e3,
                )

            for page in PAGES:  # warm-up: connections, template compilation, caches
                await batch(page, max(opts.requests // 5, 5))
            for round_ in range(opts.rounds):
                for page in PAGES if round_ % 2 == 0 else PAGES[::-1]:
                    cpu_ms, db_ms, wall_ms = await batch(page, opts.requests)
                    figures.cpu_ms[page.what].append(cpu_ms)
                    figures.db_ms[page.what].append(db_ms)
                    figures.wall_ms[page.what].append(wall_ms)
                print(
                    f"  round {round_ + 1}: "
                    + ", ".join(f"{figures.cpu_ms[p.what][-1]:.2f}" for p in PAGES)
                    + " ms CPU",
                    flush=True,
                )
    return figures


async def run_backend(backend: str, opts: harness.BackendRun) -> Figures:
    async with harness.migrated_database(backend, "web") as url:
        return await measure(url, opts)


def report(opts: harness.BackendRun, results: dict[str, Figures]) -> list[str]:
    lines = [
        f"- machine: {os.cpu_count()} CPUs, {cpu_model()}, Python {sys.version.split()[0]}; "
        f"{source_state()}",
        f"- one user with {QUIET_LINKS + 1:,} links and 90 days of rollups for each "
        f"(bench/stats_seed.py; the busy link {HOT_CLICKS:,} clicks); an admin, "
        f"{ADMIN_USERS} members without links, {DEAD_JOBS} dead jobs; {opts.rounds} "
        f"round(s) of {opts.requests:,} sequential GETs per page, in process (httpx ASGI "
        "transport), signed in with a session cookie (the admin pages as the admin)",
        "- CPU per request: this process's (kurz, the client's side, and SQLite's work) "
        "plus the PostgreSQL server processes' (of which: the database column); median "
        "over rounds, and the largest round; goal < 20 ms",
        "",
        "| backend | page | CPU ms per render (median) | of which PostgreSQL | largest round "
        "| wall ms | SQL statements | HTML bytes |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for backend, f in results.items():
        for page in PAGES:
            cpu = f.cpu_ms[page.what]
            lines.append(
                f"| {backend} | {page.what} | {statistics.median(cpu):.2f} "
                f"| {statistics.median(f.db_ms[page.what]):.2f} | {max(cpu):.2f} "
                f"| {statistics.median(f.wall_ms[page.what]):.2f} "
                f"| {f.statements[page.what]:.0f} | {f.bytes[page.what]:,} |"
            )
    seeds = ", ".join(f"{b} {f.seed_seconds:.0f} s" for b, f in results.items())

    def slowest(first_view: bool) -> str:
        found = [
            (statistics.median(f.cpu_ms[page.what]), backend, page.what)
            for backend, f in results.items()
            for page in PAGES
            if page.first_view == first_view
        ]
        if not found:
            return "none measured"
        ms, backend, what = max(found)
        return (
            f"{ms:.2f} ms CPU ({backend}, {what}; goal < 20 ms: {'met' if ms < 20 else 'NOT met'})"
        )

    lines += [
        "",
        f"- slowest page, as a running server answers it: {slowest(first_view=False)}",
        f"- slowest first view, its sums summed for it: {slowest(first_view=True)}",
        f"- seeding took {seeds}",
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    opts = harness.backend_run(
        argv, prog="python -m bench.web_pages", doc=__doc__, requests=100, unit="GETs"
    )
    results = harness.each_backend(opts, run_backend)
    if results is None:
        return 1
    harness.publish(
        "Web pages: CPU per render", report(opts, results),
        target="bench-web", module="bench.web_pages", argv=argv, keep=not opts.no_record,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
