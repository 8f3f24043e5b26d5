"""A target that reaches this kurz again is refused, however its host is spelled."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from kurz.clock import system_clock
from tests.conftest import Deployment, KeyMaker
from tests.integration.test_bad_input import assert_problem
from tests.support import running

# Spellings of 127.0.0.1:8080 that browsers, curl and the resolver all accept.
LOOPBACK_SPELLINGS = [
    "http://127.0.0.1:8080/x",
    "http://localhost:8080/x",
    "http://LOCALHOST:8080/x",
    "http://localhost.:8080/x",
    "http://app.localhost:8080/x",
    "http://127.1:8080/x",
    "http://127.0.0.2:8080/x",
    "http://2130706433:8080/x",
    "http://0x7f000001:8080/x",
    "http://0x7f.0.0.1:8080/x",
    "http://0177.0.0.1:8080/x",
    "http://[::ffff:127.0.0.1]:8080/x",
    "http://[::ffff:7f00:1]:8080/x",
    "http://0.0.0.0:8080/x",
    "http://0:8080/x",
    "http://[::]:8080/x",
    "http://[::1]:8080/x",
    "http://[0:0:0:0:0:0:0:1]:8080/x",
    "https://127.0.0.1:8080/x",
]


@pytest.fixture
async def served_locally(deployment: Deployment) -> AsyncIterator[FastAPI]:
    """kurz as `make run` starts it: on 127.0.0.1:8080, its base URL the same."""
    settings = deployment.settings(base_url="")
    assert settings.base_url == "http://127.0.0.1:8080"
    async with running(settings, system_clock) as app:
        yield app


async def _client(app: FastAPI, make_key: KeyMaker) -> httpx.AsyncClient:
    secret = await make_key("alice")
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://127.0.0.1:8080",
        headers={"Authorization": f"Bearer {secret}"},
    )


@pytest.fixture
def local_key(served_locally: FastAPI) -> KeyMaker:
    from kurz.auth import queries as key_queries
    from kurz.auth.models import ApiKeyCreate, scopes_for
    from kurz.clock import system_clock, utcnow
    from kurz.db import READ_COMMITTED

    db = served_locally.state.kurz.db

    async def make(name: str = "tester", *, admin: bool = False) -> str:
        async with db.write(READ_COMMITTED) as conn:
            created = await key_queries.create(
                conn=conn,
                key_in=ApiKeyCreate(name=name, scopes=scopes_for(admin=admin)),
                now=utcnow(system_clock),
            )
        return created.secret

    return make


@pytest.mark.parametrize("url", LOOPBACK_SPELLINGS)
async def test_every_spelling_of_this_server_is_refused(
    served_locally: FastAPI, local_key: KeyMaker, url: str
) -> None:
    async with await _client(served_locally, local_key) as api:
        problem = assert_problem(await api.post("/api/v1/links", json={"url": url}), 422)
        assert [error["field"] for error in problem["errors"]] == ["url"], problem
        made = (await api.post("/api/v1/links", json={"url": "https://example.com/"})).json()
        problem = assert_problem(
            await api.patch(
                f"/api/v1/links/{made['code']}", json={"url": url}, headers={"If-Match": '"1"'}
            ),
            422,
        )
        assert [error["field"] for error in problem["errors"]] == ["url"], problem
        listed = (await api.get("/api/v1/links")).json()["items"]
        assert [link["url"] for link in listed] == ["https://example.com/"]


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8081/x",  # another port on this machine
        "http://localhost/x",
        "http://127.0.0.1:9000/x",
        "http://localhost.example:8080/x",  # a name that only starts like it
        "http://10.0.0.1:8080/x",
    ],
)
async def test_other_servers_on_this_machine_are_allowed(
    served_locally: FastAPI, local_key: KeyMaker, url: str
) -> None:
    async with await _client(served_locally, local_key) as api:
        response = await api.post("/api/v1/links", json={"url": url})
        assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "url",
    [
        "https://kurz.test/x",
        "http://kurz.test/x",
        "https://KURZ.test./x",
        "https://kurz.test:443/x",
    ],
)
async def test_the_base_url_in_any_spelling_is_refused(api: httpx.AsyncClient, url: str) -> None:
    problem = assert_problem(await api.post("/api/v1/links", json={"url": url}), 422)
    assert [error["field"] for error in problem["errors"]] == ["url"], problem
