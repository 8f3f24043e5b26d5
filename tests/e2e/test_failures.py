"""What kurz does when a dependency fails, against real processes the tests stop.

The PostgreSQL and all-of-Redis rows of docs/lab/cap.md (a cache node:
test_cache_tiers.py; a worker: test_job_workers.py and test_click_counts.py).
Redirects of cached links stay available, stale for at most the L1 lifetime; what
needs the database fails fast with a 503 and writes nothing; nothing is lost.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from redis.asyncio import Redis

from kurz.analytics.stream import STREAM
from tests.e2e.load import BROWSER
from tests.e2e.support import PATIENCE, Server, figure, kurz_env, new_key, run
from tests.e2e.test_click_counts import Workers, stop_gracefully, totals
from tests.e2e.test_click_counts import started as started_server
from tests.support import PostgresServer, RedisServer

# While its database is down, a server answers redirects of cached links for this
# long, and for at least 3/4 of it (kurz spreads L1 lifetimes): long enough that the
# database's shutdown and the first visits fit well within it.
L1_SECONDS = 8.0
VISITS = 20


def _setup(env: dict[str, str], cwd: Path) -> str:
    assert run(["migrate"], env, cwd).returncode == 0
    return new_key(env, cwd, "ops", admin=True)


def _create(http: httpx.Client, **body: object) -> httpx.Response:
    return http.post("/api/v1/links", json={"url": "https://example.com/", **body})


def _is_503(response: httpx.Response) -> bool:
    return (
        response.status_code == 503
        and response.headers["content-type"] == "application/problem+json"
        and response.json()["type"] == "/problems/database-unavailable"
        and response.headers["retry-after"] == "1"
    )


def _until(answered: float, seconds: float = PATIENCE) -> bool:
    return time.monotonic() - answered < seconds


def test_with_postgresql_down_cached_redirects_answer_and_the_rest_fails_fast(
    tmp_path: Path, own_postgres: PostgresServer
) -> None:
    row = "PostgreSQL"
    env = kurz_env(
        KURZ_DATABASE_URL=own_postgres.url,
        KURZ_RATELIMIT_API="off",
        KURZ_RATELIMIT_REDIRECT="off",
        KURZ_REDIRECT_CACHE_TTL=str(L1_SECONDS),
    )
    secret = _setup(env, tmp_path)
    server = Server(tmp_path, env)
    try:
        server.wait_ready()
        auth = {"Authorization": f"Bearer {secret}", "User-Agent": BROWSER}
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as http:
            link = _create(http, url="https://example.com/cached").json()
            code = link["code"]
            started = datetime.now(UTC)
            # The link enters this process's L1 during this request (the clocks of
            # the test and the server are the machine's one monotonic clock).
            cached_from = time.monotonic()
            assert http.get(f"/{code}").status_code == 302
            cached_by = time.monotonic()

            own_postgres.stop()
            visits = []
            for _ in range(VISITS):
                answer = http.get(f"/{code}")
                visits.append((answer, time.monotonic()))
            # Answered while the entry was certainly alive: from L1, however slow the
            # host. Later ones may find it gone, and must then fail as below.
            alive = [answer for answer, at in visits if at < cached_from + 0.75 * L1_SECONDS]
            assert alive, "the host took longer than the L1 lifetime to stop PostgreSQL"
            assert [r.status_code for r in alive] == [302] * len(alive)
            later = [answer for answer, at in visits if at >= cached_from + 0.75 * L1_SECONDS]
            assert all(r.status_code == 302 or _is_503(r) for r in later), later
            answered = [r for r, _ in visits if r.status_code == 302]
            assert {r.headers["location"] for r in answered} == {"https://example.com/cached"}
            figure(row, "cached redirect", f"{len(answered)} of {VISITS} answered 302")

            uncached = http.get("/neverseen")
            assert _is_503(uncached), uncached.text
            took = time.monotonic()
            created = _create(http, alias="during-outage")
            took = time.monotonic() - took
            assert _is_503(created), created.text
            figure(row, "POST /api/v1/links", f"503 in {took * 1000:.0f} ms")
            patched = http.patch(f"/api/v1/links/{code}", json={"url": "https://example.com/x"},
                                 headers={"If-Match": '"1"'})  # fmt: skip
            assert _is_503(patched), patched.text
            assert _is_503(http.get(f"/api/v1/links/{code}"))
            assert http.get("/readyz").status_code == 503
            assert http.get("/healthz").status_code == 200

            # Past the L1 lifetime, a cached link needs the database again. This waits
            # for time itself: the entry is gone by then on any host.
            time.sleep(max(0.0, cached_by + L1_SECONDS - time.monotonic()))
            assert _is_503(http.get(f"/{code}"))
            figure(row, "cached redirect after the L1 lifetime", "503")

            own_postgres.start()
            back, refused = time.monotonic(), 0
            while (created := _create(http, alias="after-outage")).status_code != 201:
                assert _is_503(created), created.text
                assert _until(back)
                refused += 1
                time.sleep(0.05)
            figure(row, "recovery", f"first write {time.monotonic() - back:.2f} s after the "
                                    f"database is back, {refused} refused meanwhile")  # fmt: skip

            listed = http.get("/api/v1/links").json()["items"]
            assert sorted(item["code"] for item in listed) == sorted([code, "after-outage"])
            assert http.get(f"/{code}").status_code == 302
            # Clicks of the outage waited in memory and are counted now.
            clicks = len(answered) + 2
            counted: dict[str, int] = {}
            while (counted := totals(server, secret, code, started))["clicks"] < clicks:
                assert _until(back), counted
                time.sleep(0.1)
            assert counted["clicks"] == clicks
            figure(row, "clicks during the outage", f"all {len(answered)} counted after it")
    finally:
        server.stop()


def test_with_all_of_redis_down_everything_answers_from_process_and_database(
    tmp_path: Path, postgres_url: str, redis_server: RedisServer
) -> None:
    row = "all of Redis"
    env = kurz_env(
        KURZ_DATABASE_URL=postgres_url,
        KURZ_REDIS_URL=redis_server.url,
        KURZ_CACHE_NODES=redis_server.url,
        KURZ_RATELIMIT_API="off",
        KURZ_RATELIMIT_REDIRECT="10000/1s;burst=10000",
        KURZ_EMBEDDED_WORKER="false",
    )
    secret = _setup(env, tmp_path)
    server = Server(tmp_path, env)
    workers = Workers(tmp_path, env)
    try:
        server.wait_ready()
        workers.start("worker")
        workers.consumer("worker")
        auth = {"Authorization": f"Bearer {secret}", "User-Agent": BROWSER}
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as http:
            code = _create(http, url="https://example.com/before").json()["code"]
            started = datetime.now(UTC)
            assert http.get(f"/{code}").status_code == 302

            redis_server.kill()
            cached = [http.get(f"/{code}") for _ in range(VISITS)]
            assert [r.status_code for r in cached] == [302] * VISITS
            # The limiter answers from its in-process fallback, and says so by its fields:
            # on the 404 of an unknown code, since a redirect far from its limit goes
            # without them (ADR 0003).
            unknown = http.get("/nosuchcode9")
            assert unknown.status_code == 404
            assert "ratelimit" in unknown.headers
            figure(row, "cached redirect", f"{VISITS} of {VISITS} answered 302")

            took = time.monotonic()
            made = _create(http, url="https://example.com/new")
            took = time.monotonic() - took
            assert made.status_code == 201, made.text
            figure(row, "POST /api/v1/links", f"201 in {took * 1000:.0f} ms")
            fresh = made.json()["code"]
            assert http.get(f"/{fresh}").status_code == 302
            figure(row, "uncached redirect", "302 (from the database)")
            patched = http.patch(f"/api/v1/links/{code}", json={"url": "https://example.com/after"},
                                 headers={"If-Match": '"1"'})  # fmt: skip
            assert patched.status_code == 200, patched.text
            assert http.get(f"/{code}").headers["location"] == "https://example.com/after"
            figure(row, "PATCH, then its redirect", "200, then the new target in this process")

            redis_server.start()
            back = time.monotonic()
            # The clicks of the outage waited in the web process's memory; they reach
            # the worker through the stream once Redis is back, and are counted once.
            counted: dict[str, int] = {}
            while (counted := totals(server, secret, code, started))["clicks"] < VISITS + 2:
                assert _until(back), counted
                time.sleep(0.1)
            after = time.monotonic() - back
            figure(row, "recovery", f"all {VISITS} clicks of the outage counted {after:.2f} s "
                                    "after Redis is back")  # fmt: skip
        # Counted once: nothing more can arrive once the web process has stopped (its
        # queue goes to the stream first) and the worker has taken and acknowledged
        # everything in the stream, and stopped.
        stop_gracefully(server)
        while not asyncio.run(drained(redis_server.url)):
            assert _until(back), workers.logs()
            time.sleep(0.1)
        assert workers.stop("worker") == 0, workers.log("worker")
        reader = started_server(tmp_path, env)
        try:
            assert totals(reader, secret, code, started)["clicks"] == VISITS + 2
        finally:
            reader.stop()
    finally:
        workers.kill_all()
        server.stop()


async def drained(url: str) -> bool:
    """Whether the click stream's group has been handed every entry, and acknowledged all."""
    redis = Redis.from_url(url, decode_responses=True)
    try:
        last: str = (await redis.xinfo_stream(STREAM))["last-generated-id"]
        [group] = await redis.xinfo_groups(STREAM)
        return group["last-delivered-id"] == last and int(group["pending"]) == 0
    finally:
        await redis.aclose()
