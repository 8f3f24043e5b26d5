"""The shared cache (L2) against real `kurz serve` processes and real Redis nodes."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
from redis.asyncio import Redis

from tests.e2e.support import PATIENCE, Server, figure, kurz_env, new_key, run
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

        async def phase(visits: int, clients: int = 8) -> None:
            tickets = iter(range(visits))
            async with httpx.AsyncClient(timeout=PATIENCE) as http:

                async def client(seed: int) -> None:
                    rng = random.Random(seed)
                    for _ in tickets:
                        await visit(http, rng)

                await asyncio.gather(*(client(seed) for seed in range(clients)))

        async def scenario() -> tuple[int, int]:
            await phase(200)
            before = outcomes["ok"]
            victim.kill()
            await phase(400)
            during = outcomes["ok"] - before
            victim.start()
            back = time.monotonic()
            # The probe puts it back; the keys it owns miss there and are written back.
            while await dbsize(victim) == 0:
                assert time.monotonic() - back < PATIENCE, "the restarted node never got keys"
                await phase(40)
            rejoined = time.monotonic() - back
            figure("a cache node", "recovery", f"back in the ring, holding keys, within "
                                               f"{rejoined:.1f} s of its restart")  # fmt: skip
            return during, await dbsize(victim)

        during, rejoined_keys = asyncio.run(scenario())
    finally:
        server.stop()
    log = server.output()
    figure("a cache node", "redirects (L1 off, 8 clients, 400 while down)",
           f"{during} answered 302 while it was down, {len(wrong)} failed")  # fmt: skip
    assert wrong == [], wrong[:10]
    assert during == 400
    assert rejoined_keys > 0, "the restarted node never got keys again"
    assert "left the ring" in log
    assert "back in the ring" in log


def counters(server: Server, secret: str) -> dict[str, float]:
    """The process's own metrics (an admin key's view of GET /metrics)."""
    answer = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 200, answer.text
    values = {}
    for line in answer.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.split()
            values[name] = float(value)
    return values


def until(condition: Callable[[], bool], what: str) -> None:
    """Poll `condition`; the deadline only turns a hang into a failure."""
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


def test_a_change_through_one_process_reaches_the_other_within_the_bound(
    tmp_path: Path, postgres_url: str, redis_nodes: list[RedisServer]
) -> None:
    # A TTL far beyond the test: only an invalidation can make the other process let go.
    env, secret = deploy(
        tmp_path, postgres_url, redis_nodes,
        KURZ_REDIRECT_CACHE_TTL="3600", KURZ_REDIRECT_CACHE_MISSING_TTL="3600",
    )  # fmt: skip
    admin = new_key(env, tmp_path, "metrics", admin=True)
    writer, reader = Server(tmp_path, env), Server(tmp_path, env)
    auth = {"Authorization": f"Bearer {secret}"}

    def subscribed(server: Server) -> bool:
        return counters(server, admin)["kurz_cache_subscriptions"] == len(redis_nodes)

    def delivered() -> bool:
        """Every invalidation the writer sent has been heard, and acted on, by the reader."""
        sent = counters(writer, admin)["kurz_cache_invalidations_sent_total"]
        return counters(reader, admin)["kurz_cache_invalidations_heard_total"] >= sent

    try:
        writer.wait_ready()
        reader.wait_ready()
        # Subscribed on every node: each message the writer's nodes take reaches it.
        until(lambda: subscribed(reader), "the reader listens on every node")
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
        until(delivered, "the PATCH's invalidation reaches the reader")
        changed = httpx.get(f"{reader.url}/{code}").headers["location"]
        create(writer.url, secret, "https://example.com/later", alias="later")
        until(delivered, "the create's invalidation reaches the reader")
        found = httpx.get(f"{reader.url}/later")
    finally:
        writer.stop()
        reader.stop()
    # The bound in docs/decisions/0007-tiered-cache.md: one pub/sub delivery. The first
    # request once the message is in serves the change; without invalidation the old
    # answers would be kept for an hour.
    assert changed == "https://example.com/new"
    assert (found.status_code, found.headers.get("location")) == (302, "https://example.com/later")
