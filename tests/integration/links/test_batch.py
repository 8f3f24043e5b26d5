"""POST /api/v1/links/batch: many links in one request, each made or refused as POST
/api/v1/links would, in order; written in chunks of one transaction each; idempotent
as a whole, and resumed after a chunk failed or a request died part way."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from kurz.accounts import Passwords
from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate
from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import links
from kurz.links.batch import CHUNK
from kurz.links.models import MAX_BATCH
from tests.conftest import BASE_URL, Deployment, KeyMaker
from tests.integration.links.support import create
from tests.support import CHEAP_PASSWORDS, FakeClock, drop_connections, running

BATCH = "/api/v1/links/batch"
PROBLEM = "application/problem+json"


async def batch(
    api: httpx.AsyncClient, items: list[Any], key: str | None = None
) -> list[dict[str, Any]]:
    """POST a batch; its results, asserting a 200."""
    headers = {} if key is None else {"Idempotency-Key": f'"{key}"'}
    response = await api.post(BATCH, json={"links": items}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    results: list[dict[str, Any]] = response.json()["results"]
    assert len(results) == len(items)
    return results


async def count(db: Database) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(links)) or 0)


def urls(n: int, prefix: str = "n") -> list[dict[str, Any]]:
    return [{"url": f"https://example.com/{prefix}/{i}"} for i in range(n)]


def without_instance(problem: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in problem.items() if k != "instance"}


async def test_results_keep_the_order_and_each_link_is_made_as_one_is(
    api: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    made = await admin.post("/api/v1/domains", json={"host": "go.example"})
    assert made.status_code == 201, made.text
    items: list[dict[str, Any]] = [
        {"url": "https://example.com/a", "tags": ["x", "y"]},
        {"url": "https://example.com/b", "alias": "bee", "domain": "GO.example"},
        {"url": "https://example.com/c", "password": "open sesame", "redirect_status": 301},
        {
            "url": "https://example.com/d",
            "variants": [
                {"url": "https://example.com/d1", "weight": 1},
                {"url": "https://example.com/d2", "weight": 3},
            ],
        },
        {"url": "https://example.com/e", "alias": "bee"},
    ]
    results = await batch(api, items)
    assert [r["url"] for r in results] == [item["url"] for item in items]
    assert results[1]["domain"] == "go.example"
    assert results[1]["code"] == "bee"
    assert results[4]["domain"] == "kurz.test"
    assert results[4]["code"] == "bee"
    assert results[0]["tags"] == ["x", "y"]
    assert results[2]["password_protected"] is True
    assert "password" not in results[2]
    one = await create(api, url="https://example.com/single")
    for result in results:
        # The same fields as a single create's answer, and what a GET reads back.
        assert set(result) == set(one)
        params = {"domain": result["domain"]}
        read = await api.get(f"/api/v1/links/{result['code']}", params=params)
        assert read.status_code == 200, read.text
        assert read.json() == result
        assert read.headers["etag"] == f'"{result["version"]}"'


async def test_one_bad_item_never_stops_the_others_and_is_refused_as_one_would_be(
    api: httpx.AsyncClient, db: Database, clock: FakeClock
) -> None:
    await create(api, alias="taken")
    bad: list[Any] = [
        {"url": "ftp://example.com/"},
        {"url": "https://example.com/", "expires_at": clock.iso(-60)},
        {"url": "https://example.com/", "domain": "nowhere.example"},
        {"url": f"{BASE_URL}/loop"},
        {"url": "https://example.com/", "alias": "taken"},
        {"url": "https://example.com/", "colour": "red"},
        {"url": "https://example.com/", "variant_choice": "sticky"},
        "just a string",
        {},
    ]
    items: list[Any] = []
    for i, item in enumerate(bad):
        items += [{"url": f"https://example.com/ok/{i}"}, item]
    before = await count(db)
    results = await batch(api, items)
    assert await count(db) == before + len(bad)
    for i, item in enumerate(bad):
        good, refused = results[2 * i], results[2 * i + 1]
        assert good["url"] == f"https://example.com/ok/{i}"
        one = await api.post("/api/v1/links", json=item)
        assert one.headers["content-type"] == PROBLEM
        assert refused == without_instance(one.json()), item
        assert refused["status"] == one.status_code
    assert {r["type"] for r in results[1::2]} == {
        "/problems/validation-error",
        "/problems/alias-taken",
    }
    assert results[1]["errors"] == [
        {"field": "url", "in": "body", "message": results[1]["errors"][0]["message"]}
    ]
    assert await count(db) == before + len(bad)


async def test_an_alias_taken_by_an_earlier_item_is_the_later_ones_problem(
    api: httpx.AsyncClient, db: Database
) -> None:
    items: list[Any] = [
        {"url": "https://example.com/1", "alias": "twice"},
        {"url": "https://example.com/2", "alias": "twice"},
        # Refused on its own: it takes no alias, so the next one may have it.
        {"url": "ftp://example.com/3", "alias": "third"},
        {"url": "https://example.com/4", "alias": "third"},
        *urls(CHUNK),
        # In a later chunk: the first one's is written by then.
        {"url": "https://example.com/5", "alias": "twice"},
    ]
    results = await batch(api, items)
    assert results[0]["code"] == "twice"
    assert results[1]["status"] == 409
    assert results[1]["type"] == "/problems/alias-taken"
    assert "links[0] of this batch" in results[1]["detail"]
    assert results[2]["status"] == 422
    assert results[3]["code"] == "third"
    assert results[-1]["status"] == 409
    assert results[-1]["type"] == "/problems/alias-taken"
    read = await api.get("/api/v1/links/twice")
    assert read.json()["url"] == "https://example.com/1"
    assert await count(db) == 2 + CHUNK


async def test_up_to_a_thousand_links_and_a_malformed_envelope_is_a_problem(
    api: httpx.AsyncClient, db: Database
) -> None:
    # Past KURZ_MAX_BODY_BYTES, which a batch has a limit of its own above.
    items = [
        {"url": f"https://example.com/{i}", "tags": ["imported", "batch"]} for i in range(1000)
    ]
    assert len(items) == MAX_BATCH
    results = await batch(api, items)
    assert len({r["code"] for r in results}) == MAX_BATCH
    assert [r["url"] for r in results] == [item["url"] for item in items]
    assert await count(db) == MAX_BATCH

    for body, field in [
        ({"links": [*items, {"url": "https://example.com/one-too-many"}]}, "links"),
        ({"links": []}, "links"),
        ({"links": {"url": "https://example.com/"}}, "links"),
        ({"link": [{"url": "https://example.com/"}]}, "links"),
        ({"links": [{"url": "https://example.com/"}], "more": 1}, "more"),
        ([{"url": "https://example.com/"}], "body"),
    ]:
        response = await api.post(BATCH, json=body)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM
        problem = response.json()
        assert problem["type"] == "/problems/validation-error"
        assert field in [error["field"] for error in problem["errors"]]
    malformed = await api.post(
        BATCH, content=b'{"links": [', headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    assert malformed.json()["type"] == "/problems/malformed-json"
    assert await count(db) == MAX_BATCH


async def test_a_key_replays_the_whole_answer_and_refuses_another_body(
    api: httpx.AsyncClient, db: Database
) -> None:
    items: list[Any] = [*urls(CHUNK + 10), {"url": "ftp://nope"}]
    headers = {"Idempotency-Key": '"import-1"'}
    first = await api.post(BATCH, json={"links": items}, headers=headers)
    assert first.status_code == 200, first.text
    assert "idempotent-replayed" not in first.headers
    assert await count(db) == CHUNK + 10

    again = await api.post(BATCH, json={"links": items}, headers=headers)
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert await count(db) == CHUNK + 10

    other = await api.post(BATCH, json={"links": items[:-1]}, headers=headers)
    assert other.status_code == 422
    assert other.headers["content-type"] == PROBLEM
    assert other.json()["type"] == "/problems/idempotency-key-reused"
    # The key is the batch's: a single create with it is another operation.
    single = await api.post("/api/v1/links", json=items[0], headers=headers)
    assert single.status_code == 201
    assert await count(db) == CHUNK + 11


async def test_a_member_cannot_write_into_another_users_aliases(
    make_key: KeyMaker, client_for: Callable[[str], httpx.AsyncClient]
) -> None:
    async with (
        client_for(await make_key("ann")) as ann,
        client_for(await make_key("ben")) as ben,
    ):
        mine = await create(ann, url="https://ann.example/", alias="ann-s")
        results = await batch(
            ben,
            [{"url": "https://ben.example/", "alias": "ann-s"}, {"url": "https://ben.example/"}],
        )
        single = await ben.post(
            "/api/v1/links", json={"url": "https://ben.example/", "alias": "ann-s"}
        )
        assert results[0] == without_instance(single.json())
        assert results[0]["status"] == 409
        assert (await ann.get("/api/v1/links/ann-s")).json() == mine
        # Ben's link is Ben's: Ann cannot see it, nor Ben Ann's.
        code = results[1]["code"]
        assert results[1]["created_by"]["user"] != mine["created_by"]["user"]
        assert (await ann.get(f"/api/v1/links/{code}")).status_code == 404
        assert (await ben.get("/api/v1/links/ann-s")).status_code == 404
        assert [item["code"] for item in (await ann.get("/api/v1/links")).json()["items"]] == [
            "ann-s"
        ]


async def test_a_batch_needs_links_write_and_counts_as_one_api_call(
    deployment: Deployment, clock: FakeClock
) -> None:
    settings = deployment.settings(ratelimit_api="2/60s;burst=2")
    async with running(settings, clock) as app:
        keys = {}
        for key_in in (
            ApiKeyCreate(name="writer"),
            ApiKeyCreate(name="reader", scopes=["links:read"]),
        ):
            async with app.state.kurz.db.write(READ_COMMITTED) as conn:
                made = await key_queries.create(conn=conn, key_in=key_in, now=utcnow(clock))
            keys[key_in.name] = {"Authorization": f"Bearer {made.secret}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            body = {"links": urls(50)}
            refused = await client.post(BATCH, json=body, headers=keys["reader"])
            assert refused.status_code == 403
            assert refused.json()["type"] == "/problems/insufficient-scope"
            for left in (1, 0):
                done = await client.post(BATCH, json=body, headers=keys["writer"])
                assert done.status_code == 200
                assert done.headers["ratelimit"].startswith(f'"api";r={left};')
            limited = await client.post(BATCH, json=body, headers=keys["writer"])
            assert limited.status_code == 429
            assert await count(app.state.kurz.db) == 100


async def test_a_code_visited_before_it_existed_redirects_once_a_batch_makes_it(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    assert (await anon.get("/soon")).status_code == 404
    await batch(api, [{"url": "https://example.com/soon", "alias": "soon"}])
    visit = await anon.get("/soon")
    assert visit.status_code == 302
    assert visit.headers["location"] == "https://example.com/soon"


async def boom(db: Database, *, on: bool) -> None:
    """A trigger that makes the database refuse any link to https://boom.example/."""
    async with db.write(READ_COMMITTED) as conn:
        if db.is_sqlite:
            statements = (
                [
                    "CREATE TRIGGER boom BEFORE INSERT ON links "
                    "WHEN NEW.url LIKE 'https://boom.example/%' "
                    "BEGIN SELECT RAISE(ABORT, 'boom'); END"
                ]
                if on
                else ["DROP TRIGGER boom"]
            )
        else:
            statements = (
                [
                    "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "IF NEW.url LIKE 'https://boom.example/%' THEN RAISE EXCEPTION 'boom'; "
                    "END IF; RETURN NEW; END $$",
                    "CREATE TRIGGER boom BEFORE INSERT ON links "
                    "FOR EACH ROW EXECUTE FUNCTION boom()",
                ]
                if on
                else ["DROP TRIGGER boom ON links", "DROP FUNCTION boom()"]
            )
        for statement in statements:
            await conn.exec_driver_sql(statement)


async def test_a_failed_chunk_leaves_the_chunks_before_it_and_a_retry_writes_the_rest(
    api: httpx.AsyncClient, db: Database
) -> None:
    items: list[Any] = urls(2 * CHUNK + 50)
    items[CHUNK + 20] = {"url": "https://boom.example/"}
    headers = {"Idempotency-Key": '"boom"'}
    await boom(db, on=True)
    first = await api.post(BATCH, json={"links": items}, headers=headers)
    assert first.status_code == 200, first.text
    results = first.json()["results"]
    assert all("code" in r for r in results[:CHUNK])
    for stopped in results[CHUNK:]:
        assert stopped["type"] == "/problems/internal-error"
        assert stopped["status"] == 500
        assert f"links[{CHUNK}] to links[{2 * CHUNK - 1}] failed" in stopped["detail"]
    assert await count(db) == CHUNK
    for made in results[:CHUNK]:
        assert (await api.get(f"/api/v1/links/{made['code']}")).status_code == 200

    # Still refused: the same chunk fails again, and nothing is written twice.
    again = await api.post(BATCH, json={"links": items}, headers=headers)
    assert again.json() == first.json()
    assert await count(db) == CHUNK

    await boom(db, on=False)
    done = await api.post(BATCH, json={"links": items}, headers=headers)
    assert done.status_code == 200, done.text
    assert "idempotent-replayed" not in done.headers
    finished = done.json()["results"]
    assert finished[:CHUNK] == results[:CHUNK]
    assert [r["url"] for r in finished] == [item["url"] for item in items]
    assert await count(db) == len(items)
    replayed = await api.post(BATCH, json={"links": items}, headers=headers)
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json() == done.json()
    assert await count(db) == len(items)


class GatedPasswords(Passwords):
    """Argon2 whose first hash (in a batch's second chunk, before its transaction)
    waits until the test lets it go; any other goes at once."""

    def __init__(self) -> None:
        super().__init__(CHEAP_PASSWORDS)
        self.reached = asyncio.Event()
        self.go = asyncio.Event()

    async def ahash(self, password: str) -> str:
        if not self.reached.is_set():
            self.reached.set()
            await self.go.wait()
        return await super().ahash(password)


@dataclass
class Paused:
    """A keyed batch whose request waits before its second chunk's transaction, its
    first chunk written."""

    request: asyncio.Task[httpx.Response]
    gate: GatedPasswords
    body: dict[str, Any]
    headers: dict[str, str]


async def pause_before_the_second_chunk(
    app: FastAPI, api: httpx.AsyncClient, *, chunks: int, key: str
) -> Paused:
    gate = GatedPasswords()
    app.state.kurz.links.passwords = gate
    items: list[Any] = urls(chunks * CHUNK)
    items[CHUNK] = {"url": "https://example.com/locked", "password": "open sesame"}
    body, headers = {"links": items}, {"Idempotency-Key": f'"{key}"'}
    request = asyncio.create_task(api.post(BATCH, json=body, headers=headers))
    await gate.reached.wait()
    return Paused(request, gate, body, headers)


async def test_a_key_is_in_flight_while_its_batch_runs_and_a_dead_ones_is_taken_over(
    app: FastAPI, api: httpx.AsyncClient, db: Database, clock: FakeClock
) -> None:
    paused = await pause_before_the_second_chunk(app, api, chunks=2, key="crash")
    assert await count(db) == CHUNK

    body, headers = paused.body, paused.headers
    busy = await api.post(BATCH, json=body, headers=headers)
    assert busy.status_code == 409
    assert busy.json()["type"] == "/problems/idempotency-key-in-use"
    assert busy.headers["retry-after"] == "10"  # KURZ_IDEMPOTENCY_LOCK_TIMEOUT

    # The request dies part way, as its process would: its lease is left to run out.
    paused.request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await paused.request
    paused.gate.go.set()
    assert (await api.post(BATCH, json=body, headers=headers)).status_code == 409
    clock.advance(11)
    resumed = await api.post(BATCH, json=body, headers=headers)
    assert resumed.status_code == 200, resumed.text
    results = resumed.json()["results"]
    assert [r["url"] for r in results] == [item["url"] for item in body["links"]]
    assert results[CHUNK]["password_protected"] is True
    assert await count(db) == len(body["links"])


async def test_a_chunk_the_database_dropped_is_a_503_and_a_retry_resumes_at_once(
    app: FastAPI, api: httpx.AsyncClient, db: Database, deployment: Deployment
) -> None:
    if deployment.name != "scaled":
        pytest.skip("SQLite has no server to drop the app's connections")
    paused = await pause_before_the_second_chunk(app, api, chunks=3, key="dropped")
    # Between the first chunk and the second, the server drops every connection.
    await drop_connections(deployment.database_url)
    paused.gate.go.set()
    response = await paused.request
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert all("code" in r for r in results[:CHUNK])
    for stopped in results[CHUNK:]:
        assert stopped["type"] == "/problems/database-unavailable"
        assert stopped["status"] == 503
    assert await count(db) == CHUNK
    # The run let its key go: a retry need not wait for the lease to run out.
    resumed = await api.post(BATCH, json=paused.body, headers=paused.headers)
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["results"][:CHUNK] == results[:CHUNK]
    assert await count(db) == 3 * CHUNK


async def test_a_link_whose_code_is_batch_keeps_its_routes(api: httpx.AsyncClient) -> None:
    made = await create(api, alias="batch")
    read = await api.get(BATCH)
    assert read.status_code == 200, read.text
    assert read.json() == made
    assert (await api.head(BATCH)).status_code == 200
    changed = await api.patch(BATCH, json={"tags": ["x"]}, headers={"If-Match": '"1"'})
    assert changed.status_code == 200, changed.text
    assert changed.json()["tags"] == ["x"]
    # POST is the batch's all the same.
    assert (await batch(api, urls(1)))[0]["url"] == "https://example.com/n/0"
    assert (await api.delete(BATCH, headers={"If-Match": '"2"'})).status_code == 204
    assert (await api.get(BATCH)).status_code == 404
