"""Where requests race, two kurz processes on one database still decide exactly:
a visit cap, an alias, an ETag. Each runs on SQLite (one file) and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import Server, kurz_env, new_key

# The figures: 500 visitors at once, a cap of 100.
VISITORS, CAP = 500, 100


class Pair:
    """Two `kurz serve` processes sharing one database, and an admin key."""

    def __init__(self, cwd: Path, database_url: str) -> None:
        # What is raced is exactness, not the pool: on a loaded host hundreds of
        # requests may wait longer than the default 5 s for one of its connections.
        env = kurz_env(KURZ_DATABASE_URL=database_url, KURZ_RATELIMIT_REDIRECT="off",
                       KURZ_RATELIMIT_API="off", KURZ_DATABASE_POOL_TIMEOUT="120")  # fmt: skip
        self.secret = new_key(env, cwd, "racer", admin=True)
        self.servers = [Server(cwd, env), Server(cwd, env)]
        for server in self.servers:
            server.wait_ready()

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self.servers]

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture
def pair(tmp_path: Path, database_url: str) -> Iterator[Pair]:
    pair = Pair(tmp_path, database_url)
    try:
        yield pair
    finally:
        pair.stop()


async def _race(
    count: int,
    urls: list[str],
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    json: object = None,
) -> list[httpx.Response]:
    """`count` copies of one request at once, alternately to each server, each on its
    own connection; all are built before any is sent, and then sent together."""
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(limits=limits, timeout=60) as http:
        go = asyncio.Event()

        async def one(i: int) -> httpx.Response:
            url = urls[i % len(urls)] + path
            built = http.build_request(method, url, headers=headers, json=json)
            await go.wait()
            return await http.send(built)

        tasks = [asyncio.create_task(one(i)) for i in range(count)]
        await asyncio.sleep(0)
        go.set()
        return await asyncio.gather(*tasks)


def _statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(response.status_code for response in responses)


def _create(pair: Pair, **body: object) -> dict[str, object]:
    created = httpx.post(
        f"{pair.urls[0]}/api/v1/links", json={"url": "https://example.com/", **body},
        headers=pair.auth(),
    )  # fmt: skip
    assert created.status_code == 201, created.text
    link: dict[str, object] = created.json()
    return link


def test_a_capped_link_redirects_exactly_its_cap_across_two_processes(pair: Pair) -> None:
    link = _create(pair, max_visits=CAP)
    # Each process caches the link first, as a busy one would have: the cap must
    # still be decided by the database, not by either process's cache.
    for url in pair.urls:
        assert httpx.head(f"{url}/{link['code']}").status_code == 302

    responses = asyncio.run(_race(VISITORS, pair.urls, "GET", f"/{link['code']}"))

    assert _statuses(responses) == {302: CAP, 410: VISITORS - CAP}
    gone = next(r for r in responses if r.status_code == 410)
    assert gone.headers["content-type"] == "application/problem+json"
    assert gone.json()["type"].endswith("/link-visits-exhausted")
    read = httpx.get(f"{pair.urls[1]}/api/v1/links/{link['code']}", headers=pair.auth())
    assert read.json()["max_visits"] == CAP
    assert httpx.get(f"{pair.urls[1]}/{link['code']}").status_code == 410


def test_of_racing_creates_of_one_alias_exactly_one_is_made(pair: Pair) -> None:
    racers = 16
    body = {"url": "https://example.com/mine", "alias": "contested"}
    responses = asyncio.run(
        _race(racers, pair.urls, "POST", "/api/v1/links", headers=pair.auth(), json=body)
    )

    assert _statuses(responses) == {201: 1, 409: racers - 1}
    taken = next(r for r in responses if r.status_code == 409)
    assert taken.json()["type"].endswith("/alias-taken")
    listed = httpx.get(f"{pair.urls[1]}/api/v1/links", headers=pair.auth()).json()
    assert [item["code"] for item in listed["items"]] == ["contested"]


def test_of_racing_patches_with_one_etag_exactly_one_applies(pair: Pair) -> None:
    link = _create(pair, tags=["before"])
    racers = 16
    headers = {**pair.auth(), "If-Match": '"1"'}
    body = {"url": "https://example.com/changed", "tags": ["after"]}
    path = f"/api/v1/links/{link['code']}"
    responses = asyncio.run(_race(racers, pair.urls, "PATCH", path, headers=headers, json=body))

    assert _statuses(responses) == {200: 1, 412: racers - 1}
    stale = next(r for r in responses if r.status_code == 412)
    assert stale.headers["etag"] == '"2"'
    final = httpx.get(f"{pair.urls[1]}/api/v1/links/{link['code']}", headers=pair.auth())
    assert final.headers["etag"] == '"2"'
    assert final.json()["tags"] == ["after"]
