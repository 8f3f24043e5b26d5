"""BatchCreateLinks against POST /api/v1/links/batch: the same links made, the same
refusals (each a google.rpc.Status with CreateLink's code and details), one key."""

from __future__ import annotations

import json
from typing import Any

import grpc
import httpx

from kurz.errors import Problem
from kurz.grpc.errors import code_of, reason_of
from kurz.grpc.kurz.v1 import links_pb2 as pb
from tests.integration.grpc.support import (
    REPLAYED,
    Rpc,
    create_request,
    details_of,
    proto_field,
    proto_link,
    rest_get,
    rest_link,
    without_code,
)

BATCH = "/api/v1/links/batch"


def items(tag: str) -> list[dict[str, Any]]:
    """A batch with links made and links refused, each kind once."""
    return [
        {"url": f"https://example.com/{tag}/1", "tags": ["a", "b"], "max_visits": 3},
        {"url": "ftp://example.com/"},
        {"url": f"https://example.com/{tag}/2", "alias": f"{tag}-x"},
        {"url": f"https://example.com/{tag}/3", "alias": f"{tag}-x"},
        {"url": f"https://example.com/{tag}/4", "domain": "nowhere.example"},
        {"url": f"https://example.com/{tag}/5", "variant_choice": "sticky"},
    ]


def request(links: list[dict[str, Any]]) -> pb.BatchCreateLinksRequest:
    return pb.BatchCreateLinksRequest(requests=[create_request(link) for link in links])


def assert_same_refusal(problem: dict[str, Any], status: Any) -> None:
    """An item's google.rpc.Status says what its REST problem says."""
    slug = problem["type"].removeprefix("/problems/")
    code = code_of(Problem(problem["status"], slug, problem["title"], problem["detail"]))
    assert status.code == code.value[0]
    assert status.message == problem["detail"]
    info, violations, delay = details_of(status)
    assert (info.domain, info.reason) == ("kurz", reason_of(slug))
    assert info.metadata["type"] == problem["type"]
    assert info.metadata["http_status"] == str(problem["status"])
    assert violations == {proto_field(e["field"]): e["message"] for e in problem.get("errors", ())}
    assert delay is None


def renamed(found: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """A REST result as it reads for items(new), given that for items(old)."""
    text = json.dumps(found).replace(f"/{old}/", f"/{new}/").replace(f"{old}-x", f"{new}-x")
    renamed: dict[str, Any] = json.loads(text)
    return renamed


async def test_a_batch_makes_and_refuses_alike_through_both_apis(
    api: httpx.AsyncClient, rpc: Rpc
) -> None:
    response = await api.post(BATCH, json={"links": items("rest")})
    assert response.status_code == 200, response.text
    reply = await rpc.ok("BatchCreateLinks", request(items("rpc")))
    kinds = [result.WhichOneof("result") for result in reply.message.results]
    assert kinds == ["link", "error", "link", "error", "error", "error"]
    for rest, result in zip(response.json()["results"], reply.message.results, strict=True):
        twin = renamed(rest, "rest", "rpc")
        if result.WhichOneof("result") == "link":
            assert without_code(proto_link(result.link)) == without_code(rest_link(twin))
            assert await rest_get(api, result.link.code) == proto_link(result.link)
        else:
            assert_same_refusal(twin, result.error)

    # The same links again: each alias is taken now, and said so as CreateLink says it.
    again = (await rpc.ok("BatchCreateLinks", request(items("rpc")))).message.results
    assert again[2].WhichOneof("result") == "error"
    refused = await rpc.fails("CreateLink", create_request(items("rpc")[2]))
    assert again[2].error.message == refused.message
    assert again[2].error.code == refused.code.value[0]


async def test_a_batch_key_is_one_key_for_both_apis(api: httpx.AsyncClient, rpc: Rpc) -> None:
    links = items("keyed")
    first = await api.post(BATCH, json={"links": links}, headers={"Idempotency-Key": '"b-1"'})
    assert first.status_code == 200, first.text
    metadata = (("idempotency-key", '"b-1"'),)
    replayed = await rpc.ok("BatchCreateLinks", request(links), metadata=metadata)
    assert replayed.trailers[REPLAYED] == "true"
    for rest, result in zip(first.json()["results"], replayed.message.results, strict=True):
        if "code" in rest:
            assert proto_link(result.link) == rest_link(rest)
        else:
            assert_same_refusal(rest, result.error)
    reused = await rpc.fails("BatchCreateLinks", request(links[:2]), metadata=metadata)
    assert reused.info.reason == "IDEMPOTENCY_KEY_REUSED"


async def test_a_batch_holds_one_to_a_thousand_links(rpc: Rpc) -> None:
    for count in (0, 1001):
        links = [{"url": "https://example.com/"}] * count
        failure = await rpc.fails("BatchCreateLinks", request(links))
        assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
        assert set(failure.violations) == {"requests"}
