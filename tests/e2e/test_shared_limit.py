"""Two kurz processes sharing one Redis enforce one limit, exactly.

Every bound is counted on Redis's clock, which is the one the limiter reads: a
loaded host makes the requests slower, never the bounds wrong.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from pathlib import Path

import httpx
from redis.asyncio import Redis

from tests.e2e.support import Server, kurz_env, new_key, run
from tests.support import RedisServer

# A slow rate, so that a phase of REQUESTS drains the bucket however long it takes,
# and a burst large enough that one limiter per process would show as twice as many.
RATE, BURST = 5, 50
REQUESTS, CLIENTS = 300, 64
# Between the phases: long enough for tokens to come back, short of a full bucket.
REST = 4.0


async def redis_time(url: str) -> float:
    client = Redis.from_url(url)
    try:
        seconds, micros = await client.time()
        return float(seconds) + float(micros) / 1e6
    finally:
        await client.aclose()


async def hammer(urls: list[str], path: str) -> Counter[int]:
    """REQUESTS redirects from CLIENTS concurrent clients, alternating between servers."""
    counts: Counter[int] = Counter()
    tickets = iter(range(REQUESTS))
    # A new connection for every request: on a loaded host each of 64 kept-alive
    # connections sat idle for seconds, and one that uvicorn closed after its 5 s
    # keep-alive timeout as it was reused failed with "Server disconnected".
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=60) as http:

        async def client() -> None:
            for ticket in tickets:
                response = await http.get(urls[ticket % len(urls)] + path)
                counts[response.status_code] += 1

        await asyncio.gather(*(client() for _ in range(CLIENTS)))
    assert set(counts) <= {302, 429}, counts
    return counts


def test_two_servers_sharing_redis_allow_what_the_policy_permits(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    env = kurz_env(
        KURZ_DATABASE_URL=f"sqlite:///{tmp_path}/kurz.db",
        KURZ_REDIS_URL=redis_server.url,
        KURZ_RATELIMIT_REDIRECT=f"{RATE}/1s;burst={BURST}",
        # A loaded host may take longer than the default 0.25 s to get an answer from
        # Redis; the per-process fallback that would then start is not what is tested.
        KURZ_RATELIMIT_TIMEOUT="30",
    )
    assert run(["migrate"], env, tmp_path).returncode == 0
    secret = new_key(env, tmp_path, "t")
    servers = [Server(tmp_path, env), Server(tmp_path, env)]
    try:
        for server in servers:
            server.wait_ready()
        created = httpx.post(
            f"{servers[0].url}/api/v1/links",
            json={"url": "https://example.com/"},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert created.status_code == 201
        path = f"/{created.json()['code']}"
        urls = [s.url for s in servers]

        async def measure() -> tuple[Counter[int], Counter[int], list[float]]:
            # Redis's clock before the first request and after the last answer of
            # each phase: every check the limiter made lies between two of them.
            times = [await redis_time(redis_server.url)]
            first = await hammer(urls, path)
            times.append(await redis_time(redis_server.url))
            await asyncio.sleep(REST)  # tokens come back; nothing else to wait for
            times.append(await redis_time(redis_server.url))
            second = await hammer(urls, path)
            times.append(await redis_time(redis_server.url))
            return first, second, times

        first, second, (began, drained, rested, ended) = asyncio.run(measure())
    finally:
        for server in servers:
            server.stop()

    # One limit throughout: neither process fell back to limiting on its own.
    logs = "".join(server.output() for server in servers)
    assert "Redis unreachable" not in logs, logs
    allowed = first[302], second[302]
    print(
        f"\nallowed {allowed[0]} of {REQUESTS} in {drained - began:.2f} s, then {allowed[1]} "
        f"of {REQUESTS} in {ended - rested:.2f} s after {rested - drained:.2f} s of rest "
        f"(Redis's clock); at most {BURST + RATE * (ended - began) + 1:.1f} permitted in all"
    )
    # The bucket starts full and the first phase asks for more than it can hold, so
    # every token in it is used: fewer means requests were charged twice ...
    assert allowed[0] >= BURST, (allowed, first)
    # ... and never more than it held plus what came back meanwhile, give or take one
    # emission interval (one limiter per process would let through about twice as many).
    assert allowed[0] <= BURST + RATE * (drained - began) + 1, (allowed, drained - began)
    # After the rest, the tokens made during it are there to be taken ...
    assert allowed[1] >= min(BURST, math.floor(RATE * (rested - drained))), (
        allowed,
        rested - drained,
    )
    # ... and over both phases, the policy's total is never exceeded.
    assert sum(allowed) <= BURST + RATE * (ended - began) + 1, (allowed, ended - began)
