"""Idempotency-Key against real `kurz serve` processes: concurrency and crashes."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.e2e.support import Server, kurz_env, new_key, run

LINKS = "/api/v1/links"


@dataclass
class Deployment:
    env: dict[str, str]
    cwd: Path
    secret: str
    servers: list[Server]

    def headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}", "Idempotency-Key": f'"{key}"'}

    def start(self) -> Server:
        server = Server(self.cwd, self.env)
        self.servers.append(server)
        server.wait_ready()
        return server

    def links_tagged(self, url: str, tag: str) -> list[dict[str, object]]:
        listed = httpx.get(
            f"{url}{LINKS}",
            params={"tag": tag, "limit": 100},
            headers={"Authorization": f"Bearer {self.secret}"},
        )
        assert listed.status_code == 200, listed.text
        items: list[dict[str, object]] = listed.json()["items"]
        return items


def deploy(database_url: str, cwd: Path) -> Iterator[Deployment]:
    env = kurz_env(KURZ_DATABASE_URL=database_url, KURZ_RATELIMIT_API="off")
    migrated = run(["migrate"], env, cwd)
    assert migrated.returncode == 0, migrated.stderr
    secret = new_key(env, cwd, "e2e")
    deployment = Deployment(env, cwd, secret, [])
    try:
        yield deployment
    finally:
        for server in deployment.servers:
            server.stop()


@pytest.fixture
def sqlite_deployment(tmp_path: Path) -> Iterator[Deployment]:
    yield from deploy(f"sqlite:///{tmp_path}/kurz.db", tmp_path)


@pytest.fixture
def pg_deployment(postgres_url: str, tmp_path: Path) -> Iterator[Deployment]:
    yield from deploy(postgres_url, tmp_path)


@pytest.fixture(params=["sqlite, one server", "postgresql, two servers"])
def deployment(request: pytest.FixtureRequest) -> Deployment:
    name = "sqlite_deployment" if request.param.startswith("sqlite") else "pg_deployment"
    found = request.getfixturevalue(name)
    assert isinstance(found, Deployment)
    return found


def test_100_concurrent_posts_with_one_key_create_one_link(deployment: Deployment) -> None:
    servers = [deployment.start()]
    if "postgresql" in deployment.env["KURZ_DATABASE_URL"]:
        servers.append(deployment.start())
    body = {"url": "https://example.com/once", "tags": ["burst"]}

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=100), timeout=60) as c:
            return await asyncio.gather(
                *(
                    c.post(
                        servers[i % len(servers)].url + LINKS,
                        json=body,
                        headers=deployment.headers("k"),
                    )
                    for i in range(100)
                )
            )

    responses = asyncio.run(burst())
    created = [r for r in responses if r.status_code == 201]
    busy = [r for r in responses if r.status_code == 409]
    assert len(created) + len(busy) == 100, {r.status_code for r in responses}
    assert all(r.json()["type"] == "/problems/idempotency-key-in-use" for r in busy)
    ran = [r for r in created if "idempotent-replayed" not in r.headers]
    assert len(ran) == 1
    assert {r.content for r in created} == {ran[0].content}
    assert len(deployment.links_tagged(servers[0].url, "burst")) == 1


def _post_in_background(
    url: str, body: Mapping[str, object], headers: dict[str, str]
) -> list[object]:
    """POST in a thread; the list gets the response or the error the kill caused."""
    outcome: list[object] = []

    def post() -> None:
        try:
            outcome.append(httpx.post(url, json=body, headers=headers, timeout=60))
        except httpx.TransportError as exc:
            outcome.append(exc)

    threading.Thread(target=post, daemon=True).start()
    return outcome


def _retry_until_not_in_flight(
    url: str, body: Mapping[str, object], headers: dict[str, str]
) -> httpx.Response:
    # After a crash, PostgreSQL may hold the dead request's key for a moment (until it
    # notices the client is gone); the retry is told 409 and tries again, as a client would.
    for _ in range(600):
        response = httpx.post(url, json=body, headers=headers, timeout=60)
        if response.status_code != 409:
            return response
        assert response.json()["type"] == "/problems/idempotency-key-in-use"
        time.sleep(0.05)
    raise AssertionError("the key stayed in use")


def test_killed_mid_request_then_retried_gives_one_link(deployment: Deployment) -> None:
    rng = random.Random(4)
    server = deployment.start()
    for attempt in range(6):
        tag = f"kill{attempt}"
        body = {"url": f"https://example.com/{tag}", "tags": [tag]}
        headers = deployment.headers(tag)
        sent = _post_in_background(server.url + LINKS, body, headers)
        time.sleep(rng.uniform(0, 0.03))
        server.kill()
        server = deployment.start()
        retried = _retry_until_not_in_flight(server.url + LINKS, body, headers)
        assert retried.status_code == 201, retried.text
        links = deployment.links_tagged(server.url, tag)
        assert [link["code"] for link in links] == [retried.json()["code"]]
        if sent and isinstance(sent[0], httpx.Response):
            # The first request was answered before the kill: the retry is its replay.
            assert sent[0].status_code == 201
            assert retried.content == sent[0].content
            assert retried.headers["idempotent-replayed"] == "true"


async def _advisory_locks(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            )
        )
    finally:
        await conn.close()


async def _until_advisory_locks(database_url: str, done: Callable[[int], bool]) -> None:
    for _ in range(1200):
        if done(await _advisory_locks(database_url)):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the advisory locks never reached the expected state")


def test_a_server_killed_inside_its_transaction_leaves_no_trace(
    pg_deployment: Deployment, postgres_url: str
) -> None:
    deployment = pg_deployment
    server = deployment.start()
    body = {"url": "https://example.com/held", "alias": "held"}
    headers = deployment.headers("crash")

    async def scenario() -> None:
        # Another transaction holds an uncommitted link with the same alias, so the
        # server's INSERT waits on it: the server is certainly mid-transaction, holding
        # the key's lock, when it is killed.
        blocker = await asyncpg.connect(postgres_url)
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute(
            "INSERT INTO links (code, url, is_alias, created_by_key_id, user_id, created_at, "
            "updated_at, redirect_status, forward_query) VALUES ('held', 'https://b.example/', "
            "true, 1, (SELECT user_id FROM api_keys WHERE id = 1), now(), now(), 302, false)"
        )
        sent = _post_in_background(server.url + LINKS, body, headers)
        await _until_advisory_locks(postgres_url, lambda held: held > 0)
        assert not sent
        server.kill()
        # The dead server's transaction is still waiting on the blocker; PostgreSQL
        # notices its client is gone (client_connection_check_interval) and ends it,
        # freeing the key while the blocker still holds the alias.
        await _until_advisory_locks(postgres_url, lambda held: held == 0)
        await tx.rollback()
        await blocker.close()

    asyncio.run(scenario())
    restarted = deployment.start()
    retried = httpx.post(restarted.url + LINKS, json=body, headers=headers)
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    assert retried.json()["code"] == "held"
    again = httpx.post(restarted.url + LINKS, json=body, headers=headers)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == retried.content
    listed = httpx.get(
        f"{restarted.url}{LINKS}", headers={"Authorization": f"Bearer {deployment.secret}"}
    )
    assert [link["code"] for link in listed.json()["items"]] == ["held"]
