"""CPU per /metrics scrape, SQLite and PostgreSQL.

    python -m bench.metrics_scrape [--requests 200] [--rounds 5] [--backends sqlite,postgresql]
                                   [--no-record]

kurz runs in this process under httpx's ASGI transport, on a fresh database holding
10,000 jobs (queued, due and done: the two aggregate queries a scrape asks read them
all) and 100 links. Before measuring, traffic over 12 API routes, redirects (hits and
misses) and refused requests fills every series a busy process has. Per round, the
scrape is asked `--requests` times: the text alone (the collectors read and
rendered, prometheus_client's generate_latest), `render` (kurz.metrics.Scrape: the two
job queries, then the text), then the whole GET /metrics (with the key's check and the
client's side of the request). A figure is this process's CPU
(time.process_time) per scrape, median over the rounds; on PostgreSQL the server's
side of the two queries is not included.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Sequence
from datetime import timedelta

import httpx
from prometheus_client import generate_latest

from bench import harness
from bench.harness import BenchError
from kurz.app import create_app
from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate, scopes_for
from kurz.bootstrap import build
from kurz.clock import system_clock, utcnow
from kurz.config import Settings
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import jobs
from kurz.metrics import Scrape

JOBS = 10_000
LINKS = 100


async def seed_jobs(db: Database) -> None:
    now = utcnow(system_clock)
    rows = [
        {
            "queue": ("default", "webhooks", "analytics")[n % 3],
            "kind": "bench",
            "payload": "{}",
            "priority": 0,
            "state": ("queued", "done", "done", "dead")[n % 4],
            "run_at": now - timedelta(seconds=n),
            "attempts": 0,
            "max_attempts": 5,
            "created_at": now,
        }
        for n in range(JOBS)
    ]
    async with db.write(READ_COMMITTED) as conn:
        await conn.execute(jobs.insert(), rows)


async def measure(url: str, opts: harness.BackendRun) -> dict[str, float]:
    settings = Settings(
        database_url=url,
        ratelimit_api="off",
        ratelimit_redirect="100/60s;burst=100",
        ratelimit_auth_fail="off",
        grpc_port=0,
        embedded_worker=False,
    )
    app = create_app(build(settings))
    async with app.router.lifespan_context(app):
        db: Database = app.state.kurz.db
        await seed_jobs(db)
        async with db.write(READ_COMMITTED) as conn:
            created = await key_queries.create(
                conn=conn,
                key_in=ApiKeyCreate(name="bench", scopes=scopes_for(admin=True)),
                now=utcnow(system_clock),
            )
        transport = httpx.ASGITransport(app=app)
        bearer = {"Authorization": f"Bearer {created.secret}"}
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://b", headers=bearer) as api,
            httpx.AsyncClient(transport=transport, base_url="http://b") as anon,
        ):
            codes = []
            for n in range(LINKS):
                made = await api.post("/api/v1/links", json={"url": f"https://example.com/{n}"})
                if made.status_code != 201:
                    raise BenchError(f"POST answered {made.status_code}: {made.text}")
                codes.append(made.json()["code"])
            code = codes[0]
            for path in (
                "/api/v1/links",
                f"/api/v1/links/{code}",
                f"/api/v1/links/{code}/stats",
                "/api/v1/stats",
                "/api/v1/keys",
                "/api/v1/webhooks",
                "/api/v1/domains",
                "/api/v1/audit",
                "/api/v1/users",
                "/healthz",
                "/api/v1/nothere",
                "/_/",
            ):
                await api.get(path)
            for n in range(150):  # hits, then refusals past the limit
                await anon.get(f"/{codes[n % LINKS]}")
            await anon.get("/nothere")
            scrape: Scrape = app.state.scrape
            text = await scrape.render()
            series = sum(1 for line in text.splitlines() if not line.startswith(b"#"))

            async def text_only() -> None:
                generate_latest(scrape.registry)

            async def render() -> None:
                await scrape.render()

            async def get() -> None:
                answer = await api.get("/metrics")
                if answer.status_code != 200:
                    raise BenchError(f"GET /metrics answered {answer.status_code}")

            calls = {"text": text_only, "render": render, "GET /metrics": get}
            figures: dict[str, list[float]] = {what: [] for what in calls}
            for _ in range(opts.rounds):
                for what, call in calls.items():
                    start = time.process_time()
                    for _ in range(opts.requests):
                        await call()
                    figures[what].append((time.process_time() - start) / opts.requests)
    result = {what: statistics.median(values) for what, values in figures.items()}
    result["series"] = series
    result["bytes"] = len(text)
    return result


def main(argv: Sequence[str]) -> int:
    opts = harness.backend_run(
        argv, prog="bench.metrics_scrape", doc=__doc__, requests=200, unit="scrapes"
    )
    results = harness.each_backend(opts, _measure)
    if results is None:
        return 1
    lines = [
        f"{JOBS:,} jobs, {LINKS} links; {opts.requests} scrapes a round, median of"
        f" {opts.rounds} rounds; CPU {harness.cpu_model()}; {harness.source_state()}",
        "",
        "| backend | series | bytes | text, ms CPU | render, ms CPU | GET /metrics, ms CPU |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for backend, figures in results.items():
        lines.append(
            f"| {backend} | {figures['series']:.0f} | {figures['bytes']:,.0f} |"
            f" {figures['text'] * 1000:.2f} | {figures['render'] * 1000:.2f} |"
            f" {figures['GET /metrics'] * 1000:.2f} |"
        )
    harness.publish(
        "/metrics scrape cost",
        lines,
        target="bench-metrics",
        module="bench.metrics_scrape",
        argv=argv,
        keep=not opts.no_record,
    )
    return 0


async def _measure(backend: str, opts: harness.BackendRun) -> dict[str, float]:
    async with harness.migrated_database(backend, "metrics") as url:
        return await measure(url, opts)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
