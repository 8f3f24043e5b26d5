"""Two kurz processes sharing one Redis enforce one limit, exactly."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from redis.asyncio import Redis

from tests.e2e.support import Server, kurz_env, new_key, run
from tests.support import RedisServer

RATE, BURST, SECONDS, CLIENTS = 100, 20, 3.0, 64


async def redis_time(url: str) -> float:
    client = Redis.from_url(url)
    try:
        seconds, micros = await client.time()
        return float(seconds) + float(micros) / 1e6
    finally:
        await client.aclose()


@dataclass
class Load:
    counts: dict[int, int] = field(default_factory=dict)
    # Local monotonic times: the first answer of any kind, and the last request sent.
    first_answer: float = math.inf
    last_sent: float = 0.0


async def hammer(urls: list[str], path: str) -> Load:
    """CLIENTS concurrent clients, alternating between servers, for SECONDS."""
    load = Load()
    deadline = time.monotonic() + SECONDS
    limits = httpx.Limits(max_connections=CLIENTS)

    async with httpx.AsyncClient(limits=limits, timeout=10) as http:

        async def client(i: int) -> None:
            n = i
            while (now := time.monotonic()) < deadline:
                load.last_sent = max(load.last_sent, now)
                response = await http.get(urls[n % len(urls)] + path)
                load.first_answer = min(load.first_answer, time.monotonic())
                load.counts[response.status_code] = load.counts.get(response.status_code, 0) + 1
                n += 1

        await asyncio.gather(*(client(i) for i in range(CLIENTS)))
    return load


def test_two_servers_sharing_redis_allow_what_the_policy_permits(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    env = kurz_env(
        KURZ_DATABASE_URL=f"sqlite:///{tmp_path}/kurz.db",
        KURZ_REDIS_URL=redis_server.url,
        KURZ_RATELIMIT_REDIRECT=f"{RATE}/1s;burst={BURST}",
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

        async def measure() -> tuple[Load, float]:
            # The bucket fills while idle: wait it full, then time on Redis's clock.
            await asyncio.sleep(BURST / RATE)
            start = await redis_time(redis_server.url)
            load = await hammer([s.url for s in servers], path)
            return load, await redis_time(redis_server.url) - start

        load, elapsed = asyncio.run(measure())
    finally:
        for server in servers:
            server.stop()

    counts = load.counts
    allowed = counts.get(302, 0)
    assert set(counts) == {302, 429}, counts
    permitted = BURST + RATE * elapsed
    # Never more than the policy, give or take one emission interval (one limiter
    # per process would have let through about twice as many) ...
    assert allowed <= permitted + 1, (allowed, permitted, counts)
    # ... and no fewer than the tokens made while requests kept coming: from before
    # the first answer until after the last request was sent, the bucket was never
    # full, so no token went unused. (A slow host sends fewer requests, and this
    # bound shrinks with it.)
    busy = load.last_sent - load.first_answer
    assert allowed >= RATE * busy - 1, (allowed, busy, counts)
