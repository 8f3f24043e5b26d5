"""Idempotency keys through both APIs, in the one store they share."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import pytest

from kurz.config import Settings
from kurz.grpc.kurz.v1 import links_pb2 as pb
from tests.conftest import BASE_URL
from tests.integration.grpc.support import (
    REPLAYED,
    Rpc,
    assert_same_failure,
    create_request,
    new_key,
    proto_link,
    rest_client,
    rest_get,
    rest_link,
    rpc_client,
    serving,
)
from tests.integration.links.support import create
from tests.support import FakeClock


def keyed(key: str) -> tuple[tuple[str, str]]:
    return (("idempotency-key", key),)


async def test_a_retried_create_replays_the_first_link(api: httpx.AsyncClient, rpc: Rpc) -> None:
    request = create_request({"url": "https://example.com/once", "tags": ["t"]})
    first = await rpc.ok("CreateLink", request, metadata=keyed('"create-1"'))
    again = await rpc.ok("CreateLink", request, metadata=keyed('"create-1"'))
    assert REPLAYED not in first.trailers
    assert again.trailers[REPLAYED] == "true"
    assert proto_link(again.message) == proto_link(first.message)
    listed = await api.get("/api/v1/links")
    assert [item["code"] for item in listed.json()["items"]] == [first.message.code]


async def test_a_key_reused_with_another_body_is_refused_alike(
    api: httpx.AsyncClient, rpc: Rpc
) -> None:
    await rpc.ok(
        "CreateLink", create_request({"url": "https://example.com/a"}), metadata=keyed('"k"')
    )
    await create(api, url="https://example.com/a")  # unkeyed: not a retry
    failure = await rpc.fails(
        "CreateLink", create_request({"url": "https://example.com/b"}), metadata=keyed('"k"')
    )
    rest_key = {"Idempotency-Key": '"rest-k"'}
    first = await api.post("/api/v1/links", json={"url": "https://example.com/a"}, headers=rest_key)
    assert first.status_code == 201
    response = await api.post(
        "/api/v1/links", json={"url": "https://example.com/b"}, headers=rest_key
    )
    assert response.status_code == 422
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.info.reason == "IDEMPOTENCY_KEY_REUSED"
    assert_same_failure(response, failure)
    links = (await api.get("/api/v1/links")).json()["items"]
    assert [link["url"] for link in links] == ["https://example.com/a"] * 3


async def test_a_key_is_one_key_for_both_apis(api: httpx.AsyncClient, rpc: Rpc) -> None:
    body = {"url": "https://example.com/shared", "max_visits": 2}
    first = await api.post("/api/v1/links", json=body, headers={"Idempotency-Key": '"from-rest"'})
    assert first.status_code == 201
    replayed = await rpc.ok("CreateLink", create_request(body), metadata=keyed('"from-rest"'))
    assert replayed.trailers[REPLAYED] == "true"
    assert proto_link(replayed.message) == rest_link(first.json())

    made = await rpc.ok("CreateLink", create_request(body), metadata=keyed('"from-rpc"'))
    again = await api.post("/api/v1/links", json=body, headers={"Idempotency-Key": '"from-rpc"'})
    assert (again.status_code, again.headers["idempotent-replayed"]) == (201, "true")
    assert rest_link(again.json()) == proto_link(made.message)
    assert len((await api.get("/api/v1/links")).json()["items"]) == 2


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"url": "https://example.com/", "alias": "taken"}, set()),
        ({"url": f"{BASE_URL}/loop"}, {"url"}),
        ({"url": "https://example.com/", "expires_at": "2025-06-01T00:00:00Z"}, {"expire_time"}),
    ],
    ids=["alias-taken", "loop", "expired"],
)
async def test_a_refused_create_is_replayed_as_refused(
    api: httpx.AsyncClient, rpc: Rpc, body: dict[str, Any], fields: set[str]
) -> None:
    await create(api, alias="taken")
    first = await rpc.fails("CreateLink", create_request(body), metadata=keyed('"refused"'))
    again = await rpc.fails("CreateLink", create_request(body), metadata=keyed('"refused"'))
    assert REPLAYED not in first.trailers
    assert again.trailers[REPLAYED] == "true"
    assert set(again.violations) == fields
    # The replay, rebuilt from the stored problem+json, is the first answer again.
    assert (again.code, again.message, again.info, again.violations) == (
        first.code, first.message, first.info, first.violations
    )  # fmt: skip
    response = await api.post("/api/v1/links", json=body, headers={"Idempotency-Key": '"rest"'})
    assert_same_failure(response, again)


async def test_a_malformed_key_is_refused_alike(api: httpx.AsyncClient, rpc: Rpc) -> None:
    body = {"url": "https://example.com/"}
    response = await api.post("/api/v1/links", json=body, headers={"Idempotency-Key": "unquoted"})
    failure = await rpc.fails("CreateLink", create_request(body), metadata=keyed("unquoted"))
    assert response.status_code == 400
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.info.reason == "IDEMPOTENCY_KEY_MALFORMED"
    assert_same_failure(response, failure)


async def test_a_retried_update_replays_and_writes_once(api: httpx.AsyncClient, rpc: Rpc) -> None:
    code = (await create(api))["code"]
    request = pb.UpdateLinkRequest(code=code, expected_version=1, max_visits=3)
    first = await rpc.ok("UpdateLink", request, metadata=keyed('"patch-1"'))
    again = await rpc.ok("UpdateLink", request, metadata=keyed('"patch-1"'))
    assert again.trailers[REPLAYED] == "true"
    assert proto_link(again.message) == proto_link(first.message)
    assert (await rest_get(api, code))["version"] == 2
    # The version is part of the request: another one is another request.
    other = pb.UpdateLinkRequest(code=code, expected_version=2, max_visits=3)
    failure = await rpc.fails("UpdateLink", other, metadata=keyed('"patch-1"'))
    assert failure.info.reason == "IDEMPOTENCY_KEY_REUSED"


async def test_a_required_key_is_required_alike(settings: Settings, clock: FakeClock) -> None:
    required = settings.model_copy(update={"idempotency_required": True})
    async with serving(required, clock) as app:
        secret = await new_key(app, clock)
        async with rest_client(app, secret) as api, rpc_client(app, secret) as rpc:
            body = {"url": "https://example.com/"}
            response = await api.post("/api/v1/links", json=body)
            failure = await rpc.fails("CreateLink", create_request(body))
            assert response.status_code == 400
            assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
            assert failure.info.reason == "IDEMPOTENCY_KEY_REQUIRED"
            assert_same_failure(response, failure)
            made = await rpc.ok("CreateLink", create_request(body), metadata=keyed('"k"'))
            # Only a create needs one: an update is safe to retry under its version.
            update = pb.UpdateLinkRequest(code=made.message.code, expected_version=1, max_visits=1)
            assert (await rpc.ok("UpdateLink", update)).message.version == 2


# One link asked for in two spellings: REST's with the defaults written out, a tag
# twice and "Z"; gRPC's with its fields unset (its expire_time reaches the model as
# "+00:00"). The key is bound to the validated input, so both are the same request.
SPELLED = {"url": "https://example.com/spelled", "expires_at": "2099-01-01T00:00:00Z"}
REST_SPELLING = {**SPELLED, "redirect_status": 302, "forward_query": False, "tags": ["t", "t"]}
RPC_SPELLING = create_request({**SPELLED, "tags": ["t"]})


def rest_keyed(key: str, **headers: str) -> dict[str, str]:
    return {"Idempotency-Key": key, **headers}


async def test_a_create_keyed_over_either_api_is_replayed_over_the_other(
    api: httpx.AsyncClient, rpc: Rpc
) -> None:
    first = await api.post("/api/v1/links", json=REST_SPELLING, headers=rest_keyed('"rest"'))
    assert first.status_code == 201
    replayed = await rpc.ok("CreateLink", RPC_SPELLING, metadata=keyed('"rest"'))
    assert replayed.trailers[REPLAYED] == "true"
    assert proto_link(replayed.message) == rest_link(first.json())

    made = await rpc.ok("CreateLink", RPC_SPELLING, metadata=keyed('"rpc"'))
    assert REPLAYED not in made.trailers
    again = await api.post("/api/v1/links", json=REST_SPELLING, headers=rest_keyed('"rpc"'))
    assert (again.status_code, again.headers["idempotent-replayed"]) == (201, "true")
    assert rest_link(again.json()) == proto_link(made.message)
    assert again.headers["location"] == f"/api/v1/links/{made.message.code}"
    assert again.headers["etag"] == '"1"'

    # Other input with either key, over the other API, is refused: nothing runs.
    other = {"url": "https://example.com/other"}
    failure = await rpc.fails("CreateLink", create_request(other), metadata=keyed('"rest"'))
    refused = await api.post("/api/v1/links", json=other, headers=rest_keyed('"rpc"'))
    assert refused.status_code == 422
    assert failure.info.reason == "IDEMPOTENCY_KEY_REUSED"
    assert_same_failure(refused, failure)
    assert len((await api.get("/api/v1/links")).json()["items"]) == 2


async def test_an_update_keyed_over_either_api_is_replayed_over_the_other(
    api: httpx.AsyncClient, rpc: Rpc
) -> None:
    code = (await create(api))["code"]
    one = f"/api/v1/links/{code}"
    change = {"max_visits": 3, "tags": ["a", "a"]}
    first = await api.patch(one, json=change, headers=rest_keyed('"u1"', **{"If-Match": '"1"'}))
    assert (first.status_code, first.headers["etag"]) == (200, '"2"')
    request = pb.UpdateLinkRequest(code=code, expected_version=1, max_visits=3, tags=["a"])
    replayed = await rpc.ok("UpdateLink", request, metadata=keyed('"u1"'))
    assert replayed.trailers[REPLAYED] == "true"
    assert proto_link(replayed.message) == rest_link(first.json())

    request = pb.UpdateLinkRequest(code=code, expected_version=2, tags=["b"])
    made = await rpc.ok("UpdateLink", request, metadata=keyed('"u2"'))
    again = await api.patch(
        one, json={"tags": ["b", "b"]}, headers=rest_keyed('"u2"', **{"If-Match": '"2"'})
    )
    assert (again.status_code, again.headers["idempotent-replayed"]) == (200, "true")
    assert again.headers["etag"] == '"3"'
    assert rest_link(again.json()) == proto_link(made.message)
    assert (await rest_get(api, code))["version"] == 3


async def test_a_replayed_412_keeps_its_etag_on_both_apis(api: httpx.AsyncClient, rpc: Rpc) -> None:
    code = (await create(api))["code"]
    one = f"/api/v1/links/{code}"

    async def touch(version: int) -> None:
        changed = await api.patch(
            one, json={"tags": [f"v{version}"]}, headers={"If-Match": f'"{version}"'}
        )
        assert changed.status_code == 200

    await touch(1)
    stale = rest_keyed('"stale"', **{"If-Match": '"1"'})
    first = await api.patch(one, json={"max_visits": 5}, headers=stale)
    assert (first.status_code, first.headers["etag"]) == (412, '"2"')
    # Changed again since: a replay still names the version that won the first time.
    await touch(2)
    again = await api.patch(one, json={"max_visits": 5}, headers=stale)
    assert (again.status_code, again.headers["etag"]) == (412, '"2"')
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    request = pb.UpdateLinkRequest(code=code, expected_version=1, max_visits=5)
    failure = await rpc.fails("UpdateLink", request, metadata=keyed('"stale"'))
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION
    assert (failure.info.metadata["version"], failure.trailers[REPLAYED]) == ("2", "true")
    assert_same_failure(first, failure)

    # And the other way: refused over gRPC first, replayed over REST.
    request = pb.UpdateLinkRequest(code=code, expected_version=2, max_visits=5)
    refused = await rpc.fails("UpdateLink", request, metadata=keyed('"stale-rpc"'))
    assert (refused.info.metadata["version"], REPLAYED in refused.trailers) == ("3", False)
    await touch(3)
    replayed = await api.patch(
        one, json={"max_visits": 5}, headers=rest_keyed('"stale-rpc"', **{"If-Match": '"2"'})
    )
    assert (replayed.status_code, replayed.headers["etag"]) == (412, '"3"')
    assert replayed.headers["idempotent-replayed"] == "true"
    assert_same_failure(replayed, refused)
    assert (await rest_get(api, code))["max_visits"] is None
