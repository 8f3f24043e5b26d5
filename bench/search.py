"""Searching 100,000 links of one user, SQLite and PostgreSQL: the index kurz keeps
(ADR 0018) against scanning the rows, side by side in one run.

    python -m bench.search [--links 100000] [--runs 50] [--backends sqlite,postgresql]
                           [--no-record]

Each backend gets a fresh migrated database (a SQLite file; a PostgreSQL database made
on KURZ_BENCH_PG and dropped after). One user owns `--links` links, made up the same
way every run: a code (85% generated, 15% an alias of words), a URL on one of 300
hosts (Zipf: example.com is the most common), a title on 70%, 0 to 3 of 50 tags
(Zipf); 12 of them hold a rare phrase. A member owns 1,000 more, the oldest. The rows
are inserted in bulk (SQLite: through the triggers that keep the FTS5 table; then
nothing more, as an embedded kurz leaves it; PostgreSQL: COPY, then VACUUM ANALYZE).

Timed, `--runs` times after a warm-up, each in its own read transaction as the API
opens one: the first page (20 links) of typical searches, three ways:

- index: what GET /api/v1/links runs (kurz.links.queries.list_: the search text and
  its index, the page's rows and their tags);
- scan: the same, with the index out of reach (SQLite: the query read row by row as
  for a short one; PostgreSQL: after DROP INDEX ix_links_search);
- LIKE x4: what one writes without a search text: `code`, `url`, `og_title` LIKE
  (PostgreSQL: ILIKE) '%q%', or a tag EXISTS that does, newest first; the page's ids
  only (no rows, no tags: less work than the others).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import string
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from typing import Any
from unittest import mock

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bench import harness
from bench.harness import BenchError, cpu_model, source_state
from bench.stats_query import CpuClock, Timing, explain, timed
from kurz.accounts import users
from kurz.auth.models import MEMBER_SCOPES, Principal
from kurz.db import READ_COMMITTED, REPEATABLE_READ, Database, custom_plans
from kurz.links import queries, search
from kurz.links.search import Search, Sort, checked_query, text_of

GOAL_MS = 50.0
PAGE = 20
MEMBER_LINKS = 1_000
RARE = "Quarterly-Invoice"
START = datetime(2026, 1, 1, tzinfo=UTC)
BASE_URL = "https://kurz.test"

_SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ne",
    "ru",
    "ta",
    "vo",
    "zi",
    "pe",
    "sa",
    "do",
    "fi",
    "gu",
    "ha",
    "je",
    "wi",
    "xo",
    "be",
    "ce",
    "qu",
]
_TAGS = ["marketing", "social", "newsletter", "q3-launch", "legal", "press"]


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    q: str | None = None
    tags: tuple[str, ...] = ()
    sort: Sort = "newest"
    member: bool = False

    def search(self) -> Search:
        return Search(checked_query(self.q), self.tags, None, self.sort)


CASES = [
    Case("every link (no search)"),
    Case(f"a rare substring ({RARE.lower()})", q=RARE.lower()),
    Case("a common substring (example)", q="example"),
    Case("an absent substring (zzqzz)", q="zzqzz"),
    Case("2 characters, common (xo)", q="xo"),
    Case("2 characters, absent (~q)", q="~q"),
    Case("2 characters, rare (y-)", q="y-"),
    Case("1 character, absent (~)", q="~"),
    Case("a long query (60 characters, absent)", q="https://example.com/" + "kalo" * 10),
    Case("a tag (q3-launch)", tags=("q3-launch",)),
    Case("two tags (marketing, social)", tags=("marketing", "social")),
    Case("a common substring and a tag (example, newsletter)", q="example", tags=("newsletter",)),
    Case(f"a rare substring and a tag ({RARE.lower()}, marketing)", q=RARE.lower(),
         tags=("marketing",)),
    Case("a common substring, oldest first", q="example", sort="oldest"),
    Case("a common substring, by code", q="example", sort="code"),
    Case("a rare substring, by code", q=RARE.lower(), sort="code"),
    Case("2 characters, absent, by code", q="~q", sort="code"),
    Case("a tag, by code", tags=("q3-launch",), sort="code"),
    Case("every link, by code", sort="code"),
    Case(f"member with {MEMBER_LINKS:,} links: a common substring", q="example", member=True),
]  # fmt: skip
SEARCHES = [case for case in CASES if case.q is not None or case.tags]
# The searches whose plans the report shows.
EXPLAINED = {CASES[1].name, CASES[2].name, "a common substring, by code", "a tag (q3-launch)"}


@dataclass(frozen=True, slots=True)
class Link:
    code: str
    url: str
    title: str | None
    tags: tuple[str, ...]
    alias: bool


def make_links(n: int, seed: int) -> list[Link]:
    """`n` links made up the same way every run."""
    rng = random.Random(seed)
    words = sorted(
        {"".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(4000)}
    )
    hosts = ["example.com", "www.example.org", "github.com", "news.ycombinator.com",
             "docs.python.org", "shop.acme.de", "youtube.com", "en.wikipedia.org"]  # fmt: skip
    hosts += [f"{w}.{rng.choice(['com', 'net', 'io', 'de'])}" for w in rng.sample(words, 292)]
    host_weights = [1 / k**1.1 for k in range(1, len(hosts) + 1)]
    tags = [*_TAGS, *rng.sample(words, 44)]
    tag_weights = [1 / k for k in range(1, len(tags) + 1)]
    alphabet = string.ascii_letters + string.digits
    made = []
    for i in range(n):
        host = rng.choices(hosts, host_weights)[0]
        url = f"https://{host}/" + "/".join(rng.choice(words) for _ in range(rng.randint(1, 3)))
        if rng.random() < 0.3:
            url += f"?utm_source={rng.choice(['mail', 'x', 'fb'])}&id={rng.randint(1, 10**6)}"
        alias = rng.random() < 0.15
        code = (
            "-".join(rng.choice(words) for _ in range(rng.randint(1, 2))) + f"-{i}"
            if alias
            else "".join(rng.choice(alphabet) for _ in range(7))
        )
        title = None
        if rng.random() < 0.7:
            title = " ".join(rng.choice(words).capitalize() for _ in range(rng.randint(2, 6)))
        chosen = sorted(set(rng.choices(tags, tag_weights, k=rng.choice([0, 0, 1, 1, 2, 3]))))
        made.append(Link(code, url, title, tuple(chosen), alias))
    for i in rng.sample(range(n), 12):
        link = made[i]
        made[i] = Link(link.code, link.url, f"{RARE} {link.title or ''}", link.tags, link.alias)
    return made


def matches(links: Sequence[Link], case: Case) -> int:
    folded = checked_query(case.q)
    return sum(
        1
        for link in links
        if set(case.tags) <= set(link.tags)
        and (folded is None or folded in text_of(link.code, link.url, link.title, link.tags))
    )


@dataclass
class Backend:
    name: str
    url: str
    version: str = ""
    load_seconds: float = 0.0
    sizes: str = ""
    owner: Principal | None = None
    member: Principal | None = None
    samples: dict[tuple[str, str], Timing] = field(default_factory=dict)
    plans: list[str] = field(default_factory=list)


def _stamp(db: Database, at: datetime) -> Any:
    # As UTCDateTime stores it on SQLite: naive UTC text.
    return at.replace(tzinfo=None).isoformat(" ", "microseconds") if db.is_sqlite else at


def _rows(
    db: Database, links: Sequence[Link], user_id: int, first_id: int
) -> Iterator[tuple[Any, ...]]:
    for n, link in enumerate(links):
        at = _stamp(db, START + timedelta(seconds=first_id + n))
        yield (
            first_id + n, link.code, link.url, link.alias, user_id, at, at, 302, False,
            link.title, text_of(link.code, link.url, link.title, link.tags),
        )  # fmt: skip


_LINK_COLUMNS = [
    "id", "code", "url", "is_alias", "user_id", "created_at", "updated_at",
    "redirect_status", "forward_query", "og_title", "search",
]  # fmt: skip


async def _insert(
    conn: AsyncConnection, table: str, columns: list[str], rows: list[tuple[Any, ...]]
) -> None:
    if conn.dialect.name == "sqlite":
        marks = ", ".join("?" * len(columns))
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
        await conn.exec_driver_sql(sql, rows)
        return
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    await driver.copy_records_to_table(table, records=rows, columns=columns)


async def load(
    db: Database, url: str, owned: Sequence[Link], members: Sequence[Link]
) -> tuple[int, int]:
    """The member's links, then the owner's: their users' ids."""
    async with db.write(READ_COMMITTED) as conn:
        member = await users.create(conn, email="member@bench.test", role="member", now=START)
        owner = await users.create(conn, email="owner@bench.test", role="member", now=START)
    first = 1
    for user_id, made in ((member, members), (owner, owned)):
        for chunk in range(0, len(made), 10_000):
            part = made[chunk : chunk + 10_000]
            async with db.write(READ_COMMITTED) as conn:
                await _insert(conn, "links", _LINK_COLUMNS, list(_rows(db, part, user_id, first)))
                tags = [(first + n, tag) for n, link in enumerate(part) for tag in link.tags]
                await _insert(conn, "link_tags", ["link_id", "tag"], tags)
            first += len(part)
    if not db.is_sqlite:
        admin = await asyncpg.connect(url, timeout=5)
        try:
            for table in ("links", "link_tags"):
                await admin.execute(f"VACUUM ANALYZE {table}")
        finally:
            await admin.close()
    return owner, member


def principal(user_id: int) -> Principal:
    return Principal(user_id=user_id, role="member", scopes=MEMBER_SCOPES, name="bench", key_id=1)


def listing(db: Database, who: Principal, case: Case) -> Callable[[], Awaitable[object]]:
    """The first page as GET /api/v1/links reads it."""

    async def run() -> None:
        async with db.read(REPEATABLE_READ) as conn:
            if case.q is not None:
                await custom_plans(conn)
            await queries.list_(
                conn=conn, principal=who, limit=PAGE, cursor=None, base_url=BASE_URL,
                search=case.search(),
            )  # fmt: skip

    return run


def four_columns(db: Database, who: Principal, case: Case) -> Callable[[], Awaitable[object]]:
    """The first page's ids by LIKE over the four fields, without the search text."""
    from kurz.db.tables import link_tags, links

    q = case.q or ""
    pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"

    def like(column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        return column.ilike(pattern, escape="\\")

    tagged = sa.exists().where(link_tags.c.link_id == links.c.id, like(link_tags.c.tag))
    query = sa.select(links.c.id).where(
        links.c.user_id == who.user_id,
        links.c.deleted_at.is_(None),
        sa.or_(like(links.c.code), like(links.c.url), like(links.c.og_title), tagged),
    )
    for tag in case.tags:
        query = query.where(
            sa.exists().where(link_tags.c.link_id == links.c.id, link_tags.c.tag == tag)
        )
    query = query.order_by(links.c.id.desc()).limit(PAGE + 1)

    async def run() -> None:
        async with db.read(REPEATABLE_READ) as conn:
            await custom_plans(conn)
            (await conn.execute(query)).all()

    return run


@contextmanager
def without_trigrams() -> Iterator[None]:
    """SQLite: every query read row by row, as a common one too short for a trigram."""
    with (
        mock.patch.object(search, "_TRIGRAM", 10**6),
        mock.patch.object(search, "_MOST_PLACES", -1),
    ):
        yield


async def sizes(db: Database) -> str:
    async def one(sql: str) -> float:
        async with db.read() as conn:
            return float((await conn.exec_driver_sql(sql)).scalar_one()) / 1e6

    if db.is_sqlite:
        index = await one("SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'links_search%'")
        total = await one("SELECT page_count * page_size FROM pragma_page_count, pragma_page_size")
        return f"FTS5 table {index:.1f} MB of a {total:.1f} MB file"
    gin = await one("SELECT pg_relation_size('ix_links_search')")
    table = await one("SELECT pg_table_size('links')")
    return f"GIN index {gin:.1f} MB beside the links table's {table:.1f} MB"


async def measure(backend: Backend, runs: int, owned: list[Link], members: list[Link]) -> None:
    admin = await asyncpg.connect(harness.PG_ADMIN, timeout=5)
    db = Database.from_url(backend.url)
    try:
        name = None if db.is_sqlite else db.engine.url.database
        cpu = CpuClock(admin, name)
        started = time.perf_counter()
        owner_id, member_id = await load(db, backend.url, owned, members)
        backend.load_seconds = time.perf_counter() - started
        backend.owner, backend.member = principal(owner_id), principal(member_id)
        async with db.read() as conn:
            backend.version = str(
                (
                    await conn.exec_driver_sql(
                        "SELECT sqlite_version()" if db.is_sqlite else "SHOW server_version"
                    )
                ).scalar_one()
            )
        backend.sizes = await sizes(db)

        def who(case: Case) -> Principal:
            chosen = backend.member if case.member else backend.owner
            assert chosen is not None
            return chosen

        async def each(variant: str, cases: Sequence[Case], make: Any, patch: Any) -> None:
            for case in cases:
                with patch():
                    timing = await timed(make(db, who(case), case), runs, cpu)
                backend.samples[(case.name, variant)] = timing
                print(f"{backend.name:10} {variant:7} {case.name:60} {timing}", flush=True)

        await each("index", CASES, listing, nullcontext)
        for case in (case for case in CASES if case.name in EXPLAINED):

            def first_page(conn: AsyncConnection, case: Case = case) -> Awaitable[object]:
                return _first_page(conn, who(case), case)

            # The last statement loads the page's tags, the same for every search.
            for plan in (await explain(db, first_page))[:-1]:
                backend.plans.append(f"{case.name}: `{plan}`")
        with_q = [case for case in SEARCHES if case.q is not None and case.sort == "newest"]
        await each("LIKE x4", with_q, four_columns, nullcontext)
        if db.is_sqlite:
            await each("scan", SEARCHES, listing, without_trigrams)
        else:
            async with db.write(READ_COMMITTED) as conn:
                await conn.exec_driver_sql("DROP INDEX ix_links_search")
            await each("scan", SEARCHES, listing, nullcontext)
    finally:
        await db.dispose()
        await admin.close()


async def _first_page(conn: AsyncConnection, who: Principal, case: Case) -> object:
    await custom_plans(conn)
    return await queries.list_(
        conn=conn, principal=who, limit=PAGE, cursor=None, base_url=BASE_URL,
        search=case.search(),
    )  # fmt: skip


async def run(backends: Sequence[str], links: int, runs: int) -> list[Backend]:
    owned = make_links(links, seed=7)
    members = make_links(MEMBER_LINKS, seed=8)
    measured = []
    for name in backends:
        async with harness.migrated_database(name, "search") as url:
            backend = Backend("SQLite" if name == "sqlite" else "PostgreSQL", url)
            await measure(backend, runs, owned, members)
            measured.append(backend)
    return measured


def _cell(backend: Backend, case: Case, variant: str) -> str:
    timing = backend.samples.get((case.name, variant))
    if timing is None:
        return "-"
    median, p95 = timing.median_p95_ms()
    return f"{median:.1f} / {p95:.1f} ({timing.cpu * 1e3:.1f})"


def report(
    backends: list[Backend], links: int, runs: int, loads: tuple[float, float], owned: list[Link]
) -> list[str]:
    drivers = ", ".join(
        f"{p} {metadata.version(p)}" for p in ("SQLAlchemy", "aiosqlite", "asyncpg")
    )
    versions = ", ".join(f"{b.name} {b.version.split()[0]}" for b in backends)
    lines = [
        f"- machine: {os.cpu_count()} CPUs, {cpu_model()}, Python {sys.version.split()[0]}; "
        f"{source_state()}",
        f"- {versions}; {drivers}",
        f"- data: {links:,} links of one user (85% generated codes, 15% aliases; 300 hosts, "
        f"Zipf; a title on 70%; 0-3 of 50 tags, Zipf), {MEMBER_LINKS:,} of a member (the "
        "oldest); "
        + "; ".join(f"{b.name}: loaded in {b.load_seconds:.0f} s, {b.sizes}" for b in backends),
        f"- the first page ({PAGE} links) of each search, {runs} runs after a warm-up, each "
        "in its own read transaction; wall time median / p95 (CPU per run: this process "
        "and the PostgreSQL backend) in ms. index: what GET "
        "/api/v1/links runs; scan: the same without the index; LIKE x4: ILIKE over code, "
        "url, og_title and tags, the page's ids only",
        "",
        "| search | matches | " + " | ".join(
            f"{b.name} index | {b.name} scan | {b.name} LIKE x4" for b in backends
        ) + " |",
        "|---|---:|" + "---:|" * (3 * len(backends)),
    ]  # fmt: skip
    for case in CASES:
        found = matches(owned, case) if not case.member else "-"
        cells = [_cell(b, case, v) for b in backends for v in ("index", "scan", "LIKE x4")]
        lines.append(f"| {case.name} | {found} | {' | '.join(cells)} |")
    over = [
        f"{case.name} ({b.name}, median {b.samples[(case.name, 'index')].median_p95_ms()[0]:.1f}"
        " ms)"
        for b in backends
        for case in SEARCHES
        if b.samples[(case.name, "index")].median_p95_ms()[0] >= GOAL_MS
    ]
    worst = {
        b.name: max(b.samples[(c.name, "index")].median_p95_ms()[1] for c in SEARCHES)
        for b in backends
    }
    lines += [
        "",
        f"- goal: a search over {links:,} links within {GOAL_MS:g} ms on both backends, with "
        "the index: "
        + ("every median under it" if not over else "medians over it: " + "; ".join(over))
        + "; the slowest p95: "
        + ", ".join(f"{ms:.1f} ms ({name})" for name, ms in worst.items()),
        f"- load average (1 min) before / after: {loads[0]:.2f} / {loads[1]:.2f} on "
        f"{os.cpu_count()} CPUs (the host is shared)",
    ]
    for backend in backends:
        lines += [f"- {backend.name} plan, {plan}" for plan in backend.plans]
    return lines


def draw(backends: list[Backend], links: int, runs: int) -> None:
    """CPU per first page of each search, index against scan and LIKE x4, one panel per
    backend (docs/designs/search.md). CPU, not wall time: the host is shared."""
    from matplotlib.ticker import NullLocator

    from bench import figures

    # The searches with a text: what the trigram index is for (a tag has its own index).
    shown = [case.name for case in SEARCHES if case.q is not None]
    fig, axes = figures.grid(1, len(backends), width=11.0, height=1.4 + 0.36 * len(shown))
    axes = list(axes) if len(backends) > 1 else [axes]
    variants = ("index", "scan", "LIKE x4")
    height = 0.27
    names = shown[::-1]
    for ax, backend in zip(axes, backends, strict=True):
        for i, variant in enumerate(variants):
            ys, values = [], []
            for row, name in enumerate(names):
                timing = backend.samples.get((name, variant))
                if timing is not None:
                    ys.append(row + (1 - i) * height)
                    values.append(max(timing.cpu * 1e3, 0.01))
            ax.barh(ys, values, height, label=variant)
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())
        ax.axvline(GOAL_MS, color=figures.COLORS[5], linestyle="--", linewidth=1)
        ax.text(GOAL_MS, len(names) - 0.4, f" goal {GOAL_MS:g} ms (wall)", fontsize=7)
        whose = "kurz" if backend.name == "SQLite" else "kurz + server"
        ax.set_title(
            f"{backend.name} {backend.version.split()[0]} (CPU: {whose})", loc="left", fontsize=10
        )
        ax.grid(axis="y", visible=False)
        # The names without their examples (the page's table gives them): a smaller SVG.
        labels = [name.split(" (")[0] for name in names]
        ax.set_yticks(range(len(names)), labels if ax is axes[0] else [""] * len(names))
    low = min(bar.get_width() for ax in axes for bar in ax.patches)
    high = max(bar.get_width() for ax in axes for bar in ax.patches)
    for ax in axes:
        ax.set_xlim(low / 1.5, max(high, GOAL_MS) * 1.5)
    for ax in axes:
        ax.set_xlabel("CPU ms per page of 20 (log scale)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=3)
    fig.suptitle(
        f"Searching {links:,} links: CPU per search, mean of {runs} runs (a loaded 2-CPU host)",
        x=0.01, ha="left", fontsize=11,
    )  # fmt: skip
    figures.save(fig, "designs/figures/search-cpu-per-search.svg")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(
        prog="python -m bench.search",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--links", type=int, default=100_000, help="the user's links")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per case")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument("--no-record", action="store_true", help="do not append to the docs")
    args = parser.parse_args(argv)
    backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    if not set(backends) <= {"sqlite", "postgresql"} or args.runs < 2 or args.links < 1_000:
        parser.error("--backends from sqlite,postgresql; --runs >= 2; --links >= 1000")
    load_before = os.getloadavg()[0]
    try:
        measured = asyncio.run(run(backends, args.links, args.runs))
    except (BenchError, OSError, asyncpg.PostgresError) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    lines = report(
        measured, args.links, args.runs, (load_before, os.getloadavg()[0]),
        make_links(args.links, seed=7),
    )  # fmt: skip
    draw(measured, args.links, args.runs)
    harness.publish(
        f"Searching {args.links:,} links", lines,
        target="bench-search", module="bench.search", argv=argv, keep=not args.no_record,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
