"""The shared cache (L2) against real `kurz serve` processes and real Redis nodes."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path

import httpx
from redis.asyncio import Redis

from tests.e2e.support import Server, figure, kurz_env, new_key, run
from tests.support import RedisServer

LINKS = "/api/v1/links"


def deploy(
    cwd: Path, database_url: str, nodes: list[RedisServer], **extra: str
) -> tuple[dict[str, str], str]:
    env = kurz_env(
        KURZ_DATABASE_URL=database_url,
        KURZ_CACHE_NODES=",".join(node.url for node in nodes),
        KURZ_RATELIMIT_API="off",
        KURZ_RATELIMIT_REDIRECT="off",
        **extra,
    )
    migrated = run(["migrate"], env, cwd)
    assert migrated.returncode == 0, migrated.stderr
    secret = new_key(env, cwd, "e2e")
    return env, secret


def create(url: str, secret: str, target: str, alias: str | None = None) -> str:
    body = {"url": target} if alias is None else {"url": target, "alias": alias}
    made = httpx.post(f"{url}{LINKS}", json=body, headers={"Authorization": f"Bearer {secret}"})
    assert made.status_code == 201, made.text
    code: str = made.json()["code"]
    return code


async def dbsize(node: RedisServer) -> int:
    client = Redis.from_url(node.url)
    try:
        return int(await client.dbsize())
    finally:
        await client.aclose()


def test_a_cache_node_killed_under_load_fails_no_redirect_and_rejoins(
    tmp_path: Path, redis_nodes: list[RedisServer]
) -> None:
    # L1 off: every redirect reads L2, so the killed node is in the path of a third.
    env, secret = deploy(
        tmp_path, f"sqlite:///{tmp_path}/kurz.db", redis_nodes, KURZ_REDIRECT_CACHE_SIZE="0"
    )
    server = Server(tmp_path, env)
    try:
        server.wait_ready()
        targets = {create(server.url, secret, f"https://example.com/{i}"): i for i in range(60)}
        codes = list(targets)
        victim = redis_nodes[0]
        outcomes: Counter[str] = Counter()
        wrong: list[str] = []

        async def visit(http: httpx.AsyncClient, rng: random.Random) -> None:
            code = rng.choice(codes)
            try:
                response = await http.get(f"{server.url}/{code}")
            except httpx.TransportError as exc:
                wrong.append(f"{code}: {exc!r}")
                return
            location = response.headers.get("location")
            if response.status_code == 302 and location == f"https://example.com/{targets[code]}":
                outcomes["ok"] += 1
            else:
                wrong.append(f"{code}: {response.status_code} {location}")

        async def phase(seconds: float, clients: int = 8) -> None:
            stop = time.monotonic() + seconds
            async with httpx.AsyncClient(timeout=10) as http:

                async def client(seed: int) -> None:
                    rng = random.Random(seed)
                    while time.monotonic() < stop:
                        await visit(http, rng)

                await asyncio.gather(*(client(seed) for seed in range(clients)))

        async def scenario() -> tuple[int, int]:
            await phase(1.0)
            before = outcomes["ok"]
            victim.kill()
            await phase(2.0)
            during = outcomes["ok"] - before
            victim.start()
            back = time.monotonic()
            # The probe puts it back; the keys it owns miss there and are written back.
            for _ in range(100):
                await phase(0.2)
                if await dbsize(victim) > 0:
                    break
            rejoined = time.monotonic() - back
            figure("a cache node", "recovery", f"back in the ring, holding keys, within "
                                               f"{rejoined:.1f} s of its restart")  # fmt: skip
            return during, await dbsize(victim)

        during, rejoined_keys = asyncio.run(scenario())
    finally:
        server.stop()
    log = server.output()
    figure("a cache node", "redirects (L1 off, 8 clients, 2 s down)",
           f"{during} answered 302 while it was down, {len(wrong)} failed")  # fmt: skip
    assert wrong == [], wrong[:10]
    assert during > 0
    assert rejoined_keys > 0, "the restarted node never got keys again"
    assert "left the ring" in log
    assert "back in the ring" in log


def test_a_change_through_one_process_reaches_the_other_within_the_bound(
    tmp_path: Path, postgres_url: str, redis_nodes: list[RedisServer]
) -> None:
    # A TTL far beyond the test: only an invalidation can make the other process let go.
    env, secret = deploy(
        tmp_path, postgres_url, redis_nodes,
        KURZ_REDIRECT_CACHE_TTL="3600", KURZ_REDIRECT_CACHE_MISSING_TTL="3600",
    )  # fmt: skip
    writer, reader = Server(tmp_path, env), Server(tmp_path, env)
    auth = {"Authorization": f"Bearer {secret}"}
    try:
        writer.wait_ready()
        reader.wait_ready()
        code = create(writer.url, secret, "https://example.com/old")
        assert httpx.get(f"{reader.url}/{code}").headers["location"] == "https://example.com/old"
        # A code the reader has been asked for before it exists: remembered as missing.
        assert httpx.get(f"{reader.url}/later").status_code == 404

        etag = httpx.get(f"{writer.url}{LINKS}/{code}", headers=auth).headers["etag"]
        patched = httpx.patch(
            f"{writer.url}{LINKS}/{code}",
            json={"url": "https://example.com/new"},
            headers={**auth, "If-Match": etag},
        )
        assert patched.status_code == 200, patched.text
        changed_at = time.monotonic()
        seen = [httpx.get(f"{reader.url}/{code}").headers["location"]]
        while seen[-1] != "https://example.com/new" and time.monotonic() - changed_at < 5:
            seen.append(httpx.get(f"{reader.url}/{code}").headers["location"])
        stale_for = time.monotonic() - changed_at
        create(writer.url, secret, "https://example.com/later", alias="later")
        created_at = time.monotonic()
        found = httpx.get(f"{reader.url}/later")
        while found.status_code != 302 and time.monotonic() - created_at < 5:
            found = httpx.get(f"{reader.url}/later")
        missing_for = time.monotonic() - created_at
    finally:
        writer.stop()
        reader.stop()
    print(
        f"\nold target served for {stale_for * 1000:.1f} ms ({len(seen)} requests) after "
        f"the PATCH; unknown for {missing_for * 1000:.1f} ms after the create"
    )
    assert seen[-1] == "https://example.com/new", seen[-5:]
    assert found.headers["location"] == "https://example.com/later"
    # The bound in docs/decisions/0007-tiered-cache.md: one pub/sub delivery. 1 s is
    # slack for a loaded host; without invalidation this would take an hour.
    assert stale_for < 1.0, (stale_for, len(seen))
    assert missing_for < 1.0, (missing_for,)
