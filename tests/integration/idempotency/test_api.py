"""Idempotency-Key on the links API, embedded and scaled out."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from kurz.config import Settings
from kurz.db import Database
from tests.conftest import Deployment, KeyMaker
from tests.support import FakeClock

PROBLEM = "application/problem+json"
LINKS = "/api/v1/links"
KEY = '"8e03978e-40d5-43e8-bc93-6894a57f9324"'


def keyed(key: str = KEY, **headers: str) -> dict[str, str]:
    return {"Idempotency-Key": key, **headers}


async def live_links(db: Database) -> int:
    async with db.read() as conn:
        return int(
            (
                await conn.exec_driver_sql("SELECT count(*) FROM links WHERE deleted_at IS NULL")
            ).scalar_one()
        )


async def stored_keys(db: Database) -> int:
    async with db.read() as conn:
        return int(
            (await conn.exec_driver_sql("SELECT count(*) FROM idempotency_keys")).scalar_one()
        )


def same_response(first: httpx.Response, again: httpx.Response) -> None:
    """`again` is `first` replayed: same status, kept headers and body bytes."""
    assert again.status_code == first.status_code
    assert again.content == first.content
    for name in ("content-type", "location", "etag"):
        assert again.headers.get(name) == first.headers.get(name)
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"


async def test_a_retry_is_replayed_byte_for_byte_and_creates_nothing(
    api: httpx.AsyncClient, db: Database
) -> None:
    body = {"url": "https://example.com/a", "tags": ["x"]}
    first = await api.post(LINKS, json=body, headers=keyed())
    assert first.status_code == 201
    assert first.headers["location"] == f"{LINKS}/{first.json()['code']}"
    # The same payload spelled differently is the same request.
    again = await api.post(
        LINKS,
        content=b'{"tags":["x"],\n "url":"https://example.com/a"}',
        headers=keyed(**{"Content-Type": "application/json"}),
    )
    same_response(first, again)
    assert await live_links(db) == 1


async def test_a_replay_is_not_a_second_run(api: httpx.AsyncClient, db: Database) -> None:
    # Run again, this alias would be taken: the replay proves nothing ran.
    body = {"url": "https://example.com/", "alias": "only-once"}
    first = await api.post(LINKS, json=body, headers=keyed())
    again = await api.post(LINKS, json=body, headers=keyed())
    assert first.status_code == 201
    same_response(first, again)
    unkeyed = await api.post(LINKS, json=body)
    assert unkeyed.status_code == 409
    assert await live_links(db) == 1


async def test_a_stored_conflict_is_replayed_as_409(api: httpx.AsyncClient, db: Database) -> None:
    assert (
        await api.post(LINKS, json={"url": "https://e.com/", "alias": "taken"})
    ).status_code == 201
    body = {"url": "https://example.com/", "alias": "taken"}
    first = await api.post(LINKS, json=body, headers=keyed())
    assert first.status_code == 409
    assert first.headers["content-type"] == PROBLEM
    assert first.json()["type"] == "/problems/alias-taken"
    again = await api.post(LINKS, json=body, headers=keyed())
    same_response(first, again)
    assert await stored_keys(db) == 1


async def test_the_same_key_with_another_payload_is_422(
    api: httpx.AsyncClient, db: Database
) -> None:
    first = await api.post(LINKS, json={"url": "https://example.com/1"}, headers=keyed())
    assert first.status_code == 201
    other = await api.post(LINKS, json={"url": "https://example.com/2"}, headers=keyed())
    assert other.status_code == 422
    assert other.headers["content-type"] == PROBLEM
    assert other.json()["type"] == "/problems/idempotency-key-reused"
    assert "idempotent-replayed" not in other.headers
    assert await live_links(db) == 1
    # The stored response is untouched by the refused request.
    same_response(
        first, await api.post(LINKS, json={"url": "https://example.com/1"}, headers=keyed())
    )


async def test_keys_are_scoped_to_the_caller(
    api: httpx.AsyncClient,
    make_key: KeyMaker,
    client_for: Callable[[str], httpx.AsyncClient],
    db: Database,
) -> None:
    body = {"url": "https://example.com/"}
    mine = await api.post(LINKS, json=body, headers=keyed())
    async with client_for(await make_key("bob")) as bob:
        theirs = await bob.post(LINKS, json=body, headers=keyed())
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert "idempotent-replayed" not in theirs.headers
    assert mine.json()["code"] != theirs.json()["code"]
    assert await live_links(db) == 2


async def test_keys_are_scoped_to_the_route(api: httpx.AsyncClient) -> None:
    created = await api.post(LINKS, json={"url": "https://example.com/"}, headers=keyed())
    code = created.json()["code"]
    # The POST's key, sent with a PATCH, is a new key for that PATCH.
    patched = await api.patch(
        f"{LINKS}/{code}",
        json={"url": "https://example.com/b"},
        headers=keyed(**{"If-Match": '"1"'}),
    )
    assert patched.status_code == 200
    assert "idempotent-replayed" not in patched.headers


async def test_a_key_names_one_update_of_one_link(api: httpx.AsyncClient) -> None:
    first, second = [
        (await api.post(LINKS, json={"url": f"https://example.com/{n}"})).json()["code"]
        for n in range(2)
    ]
    headers = keyed(**{"If-Match": '"1"'})
    assert (
        await api.patch(f"{LINKS}/{first}", json={"tags": ["a"]}, headers=headers)
    ).status_code == 200
    # The same key and change for another link is another request: the key is reused.
    other = await api.patch(f"{LINKS}/{second}", json={"tags": ["a"]}, headers=headers)
    assert other.status_code == 422
    assert other.json()["type"] == "/problems/idempotency-key-reused"


async def test_the_record_holds_the_link_and_nothing_of_http(
    api: httpx.AsyncClient, db: Database
) -> None:
    created = await api.post(LINKS, json={"url": "https://example.com/"}, headers=keyed())
    async with db.read() as conn:
        [row] = (await conn.exec_driver_sql("SELECT * FROM idempotency_keys")).mappings().all()
    assert set(row) == {
        "principal", "operation", "key", "fingerprint", "status", "result", "created_at",
        "expires_at",
    }  # fmt: skip
    assert (row["operation"], row["key"], row["status"]) == ("create-link", KEY.strip('"'), 200)
    assert json.loads(row["result"]) == created.json()


async def test_a_patch_retry_is_replayed_not_refused_as_stale(api: httpx.AsyncClient) -> None:
    code = (await api.post(LINKS, json={"url": "https://example.com/"})).json()["code"]
    headers = keyed(**{"If-Match": '"1"'})
    first = await api.patch(f"{LINKS}/{code}", json={"tags": ["a"]}, headers=headers)
    assert first.status_code == 200
    assert first.headers["etag"] == '"2"'
    # Without the key the same PATCH is stale now.
    assert (
        await api.patch(f"{LINKS}/{code}", json={"tags": ["a"]}, headers={"If-Match": '"1"'})
    ).status_code == 412
    same_response(first, await api.patch(f"{LINKS}/{code}", json={"tags": ["a"]}, headers=headers))
    # If-Match is part of what the key is bound to.
    other = await api.patch(
        f"{LINKS}/{code}", json={"tags": ["a"]}, headers=keyed(**{"If-Match": '"2"'})
    )
    assert other.status_code == 422


@pytest.mark.parametrize(
    "value",
    ["8e03978e", '""', '"' + "k" * 256 + '"', '"a";v=1', '"a\\b"', '"abc'],
)
async def test_a_malformed_key_is_400(api: httpx.AsyncClient, db: Database, value: str) -> None:
    response = await api.post(LINKS, json={"url": "https://example.com/"}, headers=keyed(value))
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "/problems/idempotency-key-malformed"
    assert await live_links(db) == 0


async def test_two_key_fields_are_malformed(api: httpx.AsyncClient, db: Database) -> None:
    response = await api.post(
        LINKS,
        json={"url": "https://example.com/"},
        headers=[("Idempotency-Key", '"a"'), ("Idempotency-Key", '"b"')],
    )
    assert response.status_code == 400
    assert response.json()["type"] == "/problems/idempotency-key-malformed"
    assert await live_links(db) == 0


async def test_an_escaped_key_works(api: httpx.AsyncClient) -> None:
    first = await api.post(LINKS, json={"url": "https://example.com/"}, headers=keyed('"a\\"b"'))
    again = await api.post(LINKS, json={"url": "https://example.com/"}, headers=keyed('"a\\"b"'))
    assert first.status_code == 201
    same_response(first, again)


async def test_invalid_bodies_are_not_stored(api: httpx.AsyncClient, db: Database) -> None:
    # The request never started, so the key stays free for the corrected request.
    bad = await api.post(LINKS, json={"url": "not a url"}, headers=keyed())
    assert bad.status_code == 422
    assert await stored_keys(db) == 0
    good = await api.post(LINKS, json={"url": "https://example.com/"}, headers=keyed())
    assert good.status_code == 201
    assert "idempotent-replayed" not in good.headers


async def test_keys_expire_after_the_ttl_and_are_purged(
    api: httpx.AsyncClient, app: FastAPI, db: Database, clock: FakeClock
) -> None:
    ttl = app.state.kurz.settings.idempotency_ttl
    body = {"url": "https://example.com/"}
    first = await api.post(LINKS, json=body, headers=keyed())
    clock.advance(ttl - 1)
    same_response(first, await api.post(LINKS, json=body, headers=keyed()))
    await api.post(LINKS, json=body, headers=keyed('"younger"'))
    clock.advance(1)
    # Expired, even before the purge has run: the key is new again.
    fresh = await api.post(LINKS, json={"url": "https://example.com/other"}, headers=keyed())
    assert fresh.status_code == 201
    assert "idempotent-replayed" not in fresh.headers
    assert await live_links(db) == 3
    clock.advance(ttl - 1)
    # The first key's fresh response expires now; "younger" expired a second ago.
    assert await app.state.kurz.idempotency.purge() == 1
    assert await stored_keys(db) == 1
    clock.advance(1)
    assert await app.state.kurz.idempotency.purge() == 1
    assert await stored_keys(db) == 0


@pytest.fixture
def settings(deployment: Deployment, request: pytest.FixtureRequest) -> Settings:
    extra: dict[str, Any] = getattr(request, "param", {})
    return deployment.settings(**extra)


@pytest.mark.parametrize("settings", [{"idempotency_required": True}], indirect=True)
async def test_a_key_can_be_required(api: httpx.AsyncClient, db: Database) -> None:
    missing = await api.post(LINKS, json={"url": "https://example.com/"})
    assert missing.status_code == 400
    assert missing.json()["type"] == "/problems/idempotency-key-required"
    assert await live_links(db) == 0
    created = await api.post(LINKS, json={"url": "https://example.com/"}, headers=keyed())
    assert created.status_code == 201
    # A PATCH is made safe by If-Match; it needs no key.
    patched = await api.patch(
        f"{LINKS}/{created.json()['code']}", json={"tags": ["t"]}, headers={"If-Match": '"1"'}
    )
    assert patched.status_code == 200


@pytest.mark.parametrize("settings", [{"ratelimit_api": "1/60s;burst=1"}], indirect=True)
async def test_a_429_is_not_stored(api: httpx.AsyncClient, clock: FakeClock) -> None:
    assert (await api.get(LINKS)).status_code == 200
    refused = await api.post(LINKS, json={"url": "https://example.com/"}, headers=keyed())
    assert refused.status_code == 429
    clock.advance(60)
    retried = await api.post(LINKS, json={"url": "https://example.com/"}, headers=keyed())
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers


async def test_the_openapi_document_describes_the_header(anon: httpx.AsyncClient) -> None:
    spec = (await anon.get("/openapi.json")).json()
    post = spec["paths"][LINKS]["post"]
    names = {p["name"] for p in post["parameters"] if p["in"] == "header"}
    assert "idempotency-key" in names
    assert post["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/LinkRead"
    }
