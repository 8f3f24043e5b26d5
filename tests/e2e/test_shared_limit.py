"""Two kurz processes sharing one Redis enforce one limit, exactly."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
from redis.asyncio import Redis

from tests.e2e.support import Server, kurz_env, run
from tests.support import RedisServer

RATE, BURST, SECONDS, CLIENTS = 100, 20, 3.0, 64


async def redis_time(url: str) -> float:
    client = Redis.from_url(url)
    try:
        seconds, micros = await client.time()
        return float(seconds) + float(micros) / 1e6
    finally:
        await client.aclose()


async def hammer(urls: list[str], path: str) -> dict[int, int]:
    """CLIENTS concurrent clients, alternating between servers, for SECONDS."""
    counts: dict[int, int] = {}
    deadline = time.monotonic() + SECONDS
    limits = httpx.Limits(max_connections=CLIENTS)

    async with httpx.AsyncClient(limits=limits, timeout=10) as http:

        async def client(i: int) -> None:
            n = i
            while time.monotonic() < deadline:
                response = await http.get(urls[n % len(urls)] + path)
                counts[response.status_code] = counts.get(response.status_code, 0) + 1
                n += 1

        await asyncio.gather(*(client(i) for i in range(CLIENTS)))
    return counts


def test_two_servers_sharing_redis_allow_what_the_policy_permits(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    env = kurz_env(
        KURZ_DATABASE_URL=f"sqlite:///{tmp_path}/kurz.db",
        KURZ_REDIS_URL=redis_server.url,
        KURZ_RATELIMIT_REDIRECT=f"{RATE}/1s;burst={BURST}",
    )
    assert run(["migrate"], env, tmp_path).returncode == 0
    secret = run(["keys", "create", "--name", "t"], env, tmp_path).stdout.strip()
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

        async def measure() -> tuple[dict[int, int], float]:
            # The bucket fills while idle: wait it full, then time on Redis's clock.
            await asyncio.sleep(BURST / RATE)
            start = await redis_time(redis_server.url)
            counts = await hammer([s.url for s in servers], path)
            return counts, await redis_time(redis_server.url) - start

        counts, elapsed = asyncio.run(measure())
    finally:
        for server in servers:
            server.stop()

    allowed = counts.get(302, 0)
    assert set(counts) == {302, 429}, counts
    permitted = BURST + RATE * elapsed
    # Never more than the policy, give or take one emission interval ...
    assert allowed <= permitted + 1, (allowed, permitted, counts)
    # ... and not much less: tokens are only lost in the moments before the first
    # request and after the last (allowed 0.3 s of them). One limiter per process
    # would have let through about twice as many.
    assert allowed >= permitted - RATE * 0.3, (allowed, permitted, counts)
