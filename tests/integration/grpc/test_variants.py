"""A/B variants through the API (validated on write, read back alike over REST and gRPC)
and through every way in: the fast path, the `follow` route, HEAD and ResolveLink each
send a visit to a variant, drawn from the pipeline's PRNG or the visitor's for the day."""

from __future__ import annotations

from random import Random
from typing import Any

import grpc
import httpx
import pytest
from fastapi import FastAPI

from kurz.grpc.kurz.v1 import links_pb2 as pb
from kurz.links.target import Target
from tests.conftest import BASE_URL
from tests.integration.grpc.support import (
    Rpc,
    assert_same_failure,
    create_request,
    new_key,
    proto_field,
    rest_link,
    rpc_client,
    rpc_get,
)
from tests.integration.links.support import create
from tests.support import FakeClock

A, B, C = "https://a.example/", "https://b.example/", "https://c.example/"
SPLIT = [{"url": A, "weight": 70}, {"url": B, "weight": 30}]


async def target_of(app: FastAPI, code: str) -> Target:
    target = await app.state.kurz.targets.find(code, counted=False)
    assert isinstance(target, Target)
    return target


# The API


async def test_variants_are_made_read_and_changed_alike_over_rest_and_grpc(
    api: httpx.AsyncClient, rpc: Rpc
) -> None:
    link = await create(api, variants=SPLIT)
    assert (link["variants"], link["variant_choice"]) == (SPLIT, "random")
    assert await rpc_get(rpc, link["code"]) == rest_link(link)
    plain = await create(api)
    assert (plain["variants"], plain["variant_choice"]) == (None, None)
    assert await rpc_get(rpc, plain["code"]) == rest_link(plain)

    made = await rpc.ok(
        "CreateLink",
        create_request(
            {"url": "https://example.com/", "variants": SPLIT, "variant_choice": "sticky"}
        ),
    )
    assert [(v.url, v.weight) for v in made.message.variants] == [(A, 70), (B, 30)]
    assert made.message.variant_choice == "sticky"

    code = link["code"]
    # The choice alone: the variants stay.
    changed = await api.patch(
        f"/api/v1/links/{code}",
        json={"variant_choice": "sticky"},
        headers={"If-Match": f'"{link["version"]}"'},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["variants"], changed.json()["variant_choice"]) == (SPLIT, "sticky")
    # New variants keep the choice.
    three = [{"url": A, "weight": 1}, {"url": B, "weight": 1}, {"url": C, "weight": 2}]
    reply = await rpc.ok(
        "UpdateLink",
        pb.UpdateLinkRequest(code=code, expected_version=changed.json()["version"], variants=three),
    )
    assert reply.message.variant_choice == "sticky"
    assert len(reply.message.variants) == 3
    # Named in the mask and empty: removed, as REST's null.
    reply = await rpc.ok(
        "UpdateLink",
        pb.UpdateLinkRequest(
            code=code,
            expected_version=reply.message.version,
            update_mask={"paths": ["variants"]},
        ),
    )
    assert (list(reply.message.variants), reply.message.variant_choice) == ([], "")
    again = await api.patch(
        f"/api/v1/links/{code}",
        json={"variants": SPLIT},
        headers={"If-Match": f'"{reply.message.version}"'},
    )
    assert (again.json()["variants"], again.json()["variant_choice"]) == (SPLIT, "random")
    cleared = await api.patch(
        f"/api/v1/links/{code}",
        json={"variants": None},
        headers={"If-Match": f'"{again.json()["version"]}"'},
    )
    assert (cleared.json()["variants"], cleared.json()["variant_choice"]) == (None, None)


def variants(*weights: int) -> list[dict[str, Any]]:
    return [{"url": f"https://{i}.example/", "weight": w} for i, w in enumerate(weights)]


@pytest.mark.parametrize(
    ("extra", "fields"),
    [
        ({"variants": variants(1)}, {"variants"}),
        ({"variants": variants(*[1] * 11)}, {"variants"}),
        ({"variants": variants(1, 0)}, {"variants.1.weight"}),
        ({"variants": variants(1, 1_000_001)}, {"variants.1.weight"}),
        ({"variants": [{"url": A, "weight": 1}, {"url": A, "weight": 2}]}, {"variants"}),
        ({"variants": [{"url": A, "weight": 1}, {"url": "ftp://b/", "weight": 1}]},
         {"variants.1.url"}),
        ({"variants": [{"url": A, "weight": 1}, {"url": f"{BASE_URL}/x", "weight": 1}]},
         {"variants.1.url"}),
        ({"variants": variants(1, 1), "variant_choice": "often"}, {"variant_choice"}),
        ({"variant_choice": "sticky"}, {"variant_choice"}),
    ],
    ids=[
        "one", "eleven", "weight-0", "weight-too-big", "same-url", "bad-url", "loop",
        "unknown-choice", "choice-without-variants",
    ],
)  # fmt: skip
async def test_bad_variants_are_refused_alike(
    api: httpx.AsyncClient, rpc: Rpc, extra: dict[str, Any], fields: set[str]
) -> None:
    body = {"url": "https://example.com/", **extra}
    response = await api.post("/api/v1/links", json=body)
    failure = await rpc.fails("CreateLink", create_request(body))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in response.json()["errors"]} == fields
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(failure.violations) == {proto_field(field) for field in fields}
    assert_same_failure(response, failure)


async def test_an_unknown_field_in_a_variant_is_refused(api: httpx.AsyncClient) -> None:
    body = {"url": A, "variants": [{"url": A, "weight": 1, "share": 1}, {"url": B, "weight": 1}]}
    response = await api.post("/api/v1/links", json=body)
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"variants.0.share"}


async def test_a_choice_for_a_link_without_variants_is_refused(api: httpx.AsyncClient) -> None:
    link = await create(api)
    response = await api.patch(
        f"/api/v1/links/{link['code']}",
        json={"variant_choice": "sticky"},
        headers={"If-Match": f'"{link["version"]}"'},
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"variant_choice"}
    missing = await api.patch(
        "/api/v1/links/nosuch1", json={"variant_choice": "sticky"}, headers={"If-Match": "*"}
    )
    assert missing.status_code == 404


# Visits


async def test_every_way_in_sends_a_visit_to_the_variant_the_pipelines_draw_falls_on(
    app: FastAPI, anon: httpx.AsyncClient, api: httpx.AsyncClient, rpc: Rpc
) -> None:
    link = await create(api, variants=SPLIT, forward_query=True)
    code = link["code"]
    visits = app.state.kurz.visits
    visits.random = Random(21).random
    # The same draws, made beside the pipeline: each visit takes one, in order.
    draws = Random(21).random
    target = await target_of(app, code)
    assert target.variants is not None

    def expected(query: str = "") -> str:
        url = target.variants.pick(draws()).url  # type: ignore[union-attr]
        return f"{url}?{query}" if query else url

    # An L1 miss (the fast path's full pipeline), then hits (no await), the `follow`
    # route ("/code/"), a HEAD, and ResolveLink.
    for _ in range(40):
        answer = await anon.get(f"/{code}")
        assert answer.status_code == 302
        assert answer.headers["location"] == expected()
    answer = await anon.get(f"/{code}?utm=x")
    assert answer.headers["location"] == expected("utm=x")
    answer = await anon.get(f"/{code}/")
    assert answer.headers["location"] == expected()
    answer = await anon.head(f"/{code}")
    assert answer.headers["location"] == expected()
    for _ in range(5):
        reply = await rpc.ok("ResolveLink", pb.ResolveLinkRequest(code=code, query="q=1"))
        assert reply.message.location == expected("q=1")
    # The link's own url is never the answer while it has variants.
    seen = {(await anon.get(f"/{code}")).headers["location"] for _ in range(40)}
    assert seen == {A, B}


async def test_a_sticky_link_sends_a_visitor_to_one_variant_all_day(
    app: FastAPI, anon: httpx.AsyncClient, api: httpx.AsyncClient, rpc: Rpc, clock: FakeClock
) -> None:
    three = [{"url": A, "weight": 1}, {"url": B, "weight": 1}, {"url": C, "weight": 1}]
    link = await create(api, variants=three, variant_choice="sticky")
    code = link["code"]
    target = await target_of(app, code)
    assert target.variants is not None
    hashes = app.state.kurz.visits.visitors
    agents = [f"agent {i}" for i in range(30)]

    def theirs(agent: str, ip: str = "127.0.0.1") -> str:
        return target.variants.for_visitor(hashes.visitor(ip, agent), target.link_id).url  # type: ignore[union-attr]

    for agent in agents:
        for _ in range(3):
            answer = await anon.get(f"/{code}", headers={"User-Agent": agent})
            assert answer.headers["location"] == theirs(agent)
    # Visitors differ: they are spread over the variants, not all sent to one.
    assert {theirs(agent) for agent in agents} == {A, B, C}
    # A proxy resolving for a named visitor gets that visitor's variant.
    async with rpc_client(app, await new_key(app, clock, "edge", proxy=True)) as edge:
        request = pb.ResolveLinkRequest(code=code, client_ip="203.0.113.5", user_agent="agent 3")
        reply = await edge.ok("ResolveLink", request)
    assert reply.message.location == theirs("agent 3", "203.0.113.5")
