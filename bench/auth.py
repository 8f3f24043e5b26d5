"""What a session costs an API call against a key: GET /api/v1/links/{code}, in one run.

    python -m bench.auth [--requests 1000] [--rounds 5] [--backends sqlite,postgresql]
                         [--no-record]

Each backend gets a fresh database (a SQLite file; a PostgreSQL database created for
the run on KURZ_BENCH_PG, default the test server, and dropped after). kurz runs in
this process under httpx's ASGI transport, so the figures are kurz's own work plus the
database's, with no HTTP server or network in between; that makes authentication's
share as large as it can be. One admin user signs in (POST /api/v1/session) and has
one API key. Per round, in alternating order, `--requests` sequential GETs of one link:

- key: with `Authorization: Bearer <key>`;
- session: with the session cookie only (a GET needs no CSRF token).

session/key is the ratio of calls per second within a round, median over rounds. SQL
statements per call are counted on the engine: they do not vary with noise.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from bench import figures, harness
from bench.harness import BenchError, cpu_model, source_state
from bench.idempotency import Statements, bars
from kurz.accounts import Passwords, users
from kurz.app import create_app
from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate, scopes_for
from kurz.bootstrap import build
from kurz.clock import system_clock, utcnow
from kurz.config import Settings
from kurz.db import READ_COMMITTED, Database

MODES = ("key", "session")
EMAIL = "bench@example.com"
PASSWORD = "bench-password-1"  # noqa: S105


@dataclass
class Figures:
    rates: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MODES})
    statements: dict[str, float] = field(default_factory=dict)

    def ratio(self) -> float:
        pairs = zip(self.rates["session"], self.rates["key"], strict=True)
        return statistics.median(s / k for s, k in pairs)


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
        now = utcnow(system_clock)
        async with db.write(READ_COMMITTED) as conn:
            user_id = await users.create(
                conn,
                email=EMAIL,
                role="admin",
                now=now,
                password_hash=Passwords().hash(PASSWORD),
            )
            created = await key_queries.create(
                conn=conn,
                key_in=ApiKeyCreate(name="bench", scopes=scopes_for(admin=True)),
                now=now,
                user_id=user_id,
            )
        transport = httpx.ASGITransport(app=app)
        bearer = {"Authorization": f"Bearer {created.secret}"}
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://b", headers=bearer) as keyed,
            httpx.AsyncClient(transport=transport, base_url="http://b") as browser,
        ):
            made = await keyed.post("/api/v1/links", json={"url": "https://example.com/b"})
            if made.status_code != 201:
                raise BenchError(f"POST answered {made.status_code}: {made.text}")
            path = f"/api/v1/links/{made.json()['code']}"
            signed = await browser.post(
                "/api/v1/session", json={"email": EMAIL, "password": PASSWORD}
            )
            if signed.status_code != 204 or not browser.cookies:
                raise BenchError(f"sign-in answered {signed.status_code}: {signed.text}")
            # The cookie as a plain header, as the key is: httpx's cookie jar would add
            # client-side work to the session's side only.
            [(name, value)] = browser.cookies.items()
            cookie = {"Cookie": f"{name}={value}"}
            session = httpx.AsyncClient(transport=transport, base_url="http://b", headers=cookie)
            clients = {"key": keyed, "session": session}
            statements = Statements(db)

            async def batch(mode: str) -> float:
                client = clients[mode]
                before = statements.count
                start = time.perf_counter()
                for _ in range(opts.requests):
                    response = await client.get(path)
                    if response.status_code != 200:
                        raise BenchError(f"{mode} GET answered {response.status_code}")
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
            await session.aclose()
    return figures


async def run_backend(backend: str, opts: harness.BackendRun) -> Figures:
    async with harness.migrated_database(backend, "auth") as url:
        return await measure(url, opts)


def report(opts: harness.BackendRun, results: dict[str, Figures]) -> list[str]:
    lines = [
        f"- machine: {os.cpu_count()} CPUs, {cpu_model()}, Python {sys.version.split()[0]}; "
        f"{source_state()}",
        f"- {opts.rounds} round(s) of {opts.requests:,} sequential GET /api/v1/links/{{code}} "
        "per mode, modes alternating order; in process (httpx ASGI transport), no rate "
        "limits, KURZ_AUTH_CACHE_TTL off (every call checks the database)",
        "",
        "| backend | with a key, calls/s | with a session, calls/s | session/key "
        "| SQL statements per call (key / session) |",
        "|---|---:|---:|---:|---|",
    ]
    for backend, f in results.items():
        med = {m: statistics.median(f.rates[m]) for m in MODES}
        stmts = " / ".join(f"{f.statements[m]:.1f}" for m in MODES)
        lines.append(
            f"| {backend} | {med['key']:,.0f} | {med['session']:,.0f} | {f.ratio():.3f} | {stmts} |"
        )
    return lines


def draw(results: dict[str, Figures]) -> None:
    rates = {b: {m: statistics.median(f.rates[m]) for m in MODES} for b, f in results.items()}
    statements = {b: dict(f.statements) for b, f in results.items()}
    fig = bars(
        "GET /api/v1/links/{code} with an API key and with a session cookie, in process "
        "(shared 2-CPU machine, loaded)", "calls", rates, statements,
    )  # fmt: skip
    figures.save(fig, "designs/figures/sessions-csrf-cost.svg")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    opts = harness.backend_run(
        argv, prog="python -m bench.auth", doc=__doc__, requests=1000, unit="GETs"
    )
    results = harness.each_backend(opts, run_backend)
    if results is None:
        return 1
    draw(results)
    harness.publish(
        "Sessions against keys", report(opts, results),
        target="bench-auth", module="bench.auth", argv=argv, keep=not opts.no_record,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
