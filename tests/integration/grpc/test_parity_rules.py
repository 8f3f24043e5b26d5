"""Targeting rules through gRPC as through REST: the same rules stored and shown,
the same refusals (the proto's names in the violations), and ResolveLink sends a
visitor where GET /{code} sends them."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import pytest
from fastapi import FastAPI
from google.protobuf.field_mask_pb2 import FieldMask

from kurz.grpc.kurz.v1 import links_pb2 as pb
from tests.integration.grpc.support import (
    Rpc,
    assert_same_failure,
    create_request,
    new_key,
    rest_get,
    rest_link,
    rpc_client,
    rpc_create,
    rpc_get,
    stamp,
)
from tests.integration.links.support import create
from tests.integration.links.test_targeting import DESKTOP, IPHONE
from tests.support import FakeClock

RULES: list[dict[str, Any]] = [
    {"url": "https://apps.example/", "match": "all", "conditions": [
        {"type": "device", "in": ["ios"]},
        {"type": "time", "from": "2026-01-01T00:00:00Z", "until": "2027-01-01T00:00:00Z"},
    ]},
    {"url": "https://example.com/de", "match": "any", "conditions": [
        {"type": "language", "in": ["de"]},
        {"type": "query", "param": "lang", "equals": "de"},
        {"type": "query", "param": "de"},
    ]},
]  # fmt: skip


def rule_messages(rules: list[dict[str, Any]]) -> list[pb.TargetingRule]:
    """REST's rules as the proto spells them."""
    messages = []
    for rule in rules:
        conditions = []
        for condition in rule["conditions"]:
            fields = {k: v for k, v in condition.items() if k not in ("in", "from", "until")}
            if "in" in condition:
                fields["values"] = condition["in"]
            if "from" in condition:
                fields["start_time"] = stamp(condition["from"])
            if "until" in condition:
                fields["end_time"] = stamp(condition["until"])
            conditions.append(pb.Condition(**fields))
        messages.append(
            pb.TargetingRule(url=rule["url"], match=rule["match"], conditions=conditions)
        )
    return messages


def request_with_rules(body: dict[str, Any]) -> pb.CreateLinkRequest:
    request = create_request({k: v for k, v in body.items() if k != "rules"})
    request.rules.extend(rule_messages(body["rules"]))
    return request


async def test_rules_made_through_either_api_are_the_same(api: httpx.AsyncClient, rpc: Rpc) -> None:
    by_rest = rest_link(await create(api, rules=RULES))
    made = await rpc.ok(
        "CreateLink", request_with_rules({"url": "https://example.com/", "rules": RULES})
    )
    by_rpc = await rpc_get(rpc, made.message.code)
    assert by_rpc["rules"] == by_rest["rules"]
    assert by_rpc["rules"][0]["conditions"][1]["until"].year == 2027
    assert await rest_get(api, made.message.code) == by_rpc


async def test_update_replaces_the_rules_and_a_mask_clears_them(rpc: Rpc) -> None:
    code = (await rpc_create(rpc))["code"]
    request = pb.UpdateLinkRequest(code=code, expected_version=1, rules=rule_messages(RULES[:1]))
    changed = (await rpc.ok("UpdateLink", request)).message
    assert [rule.url for rule in changed.rules] == ["https://apps.example/"]
    # Other fields leave them alone.
    tagged = (
        await rpc.ok("UpdateLink", pb.UpdateLinkRequest(code=code, expected_version=2, tags=["x"]))
    ).message
    assert len(tagged.rules) == 1
    mask = FieldMask(paths=["rules"])
    cleared = await rpc.ok(
        "UpdateLink", pb.UpdateLinkRequest(code=code, expected_version=3, update_mask=mask)
    )
    assert list(cleared.message.rules) == []


@pytest.mark.parametrize(
    ("condition", "field", "proto"),
    [
        ({"type": "country", "in": ["XY"]}, "country.in.0", "country.values.0"),
        ({"type": "language", "in": ["en_GB"]}, "language.in.0", "language.values.0"),
        ({"type": "device", "in": ["ios"], "param": "x"}, "device.param", "device.param"),
        (
            {"type": "time", "from": "2030-01-02T00:00:00Z", "until": "2030-01-01T00:00:00Z"},
            "time",
            "time",
        ),
    ],
)
async def test_a_bad_rule_is_refused_alike(
    api: httpx.AsyncClient, rpc: Rpc, condition: dict[str, Any], field: str, proto: str
) -> None:
    rule = {"url": "https://e.com/", "match": "all", "conditions": [condition]}
    body = {"url": "https://example.com/", "rules": [RULES[0], rule]}
    response = await api.post("/api/v1/links", json=body)
    failure = await rpc.fails("CreateLink", request_with_rules(body))
    assert response.status_code == 422
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [e["field"] for e in response.json()["errors"]] == [f"rules.1.conditions.0.{field}"]
    assert list(failure.violations) == [f"rules.1.conditions.0.{proto}"]
    assert_same_failure(response, failure)


async def test_resolve_sends_a_visitor_where_get_sends_them(
    app: FastAPI, api: httpx.AsyncClient, anon: httpx.AsyncClient, rpc: Rpc, clock: FakeClock
) -> None:
    code = (await create(api, rules=RULES, forward_query=True))["code"]
    visits = [
        ({"user-agent": IPHONE}, ""),
        ({"user-agent": DESKTOP}, ""),
        ({"user-agent": DESKTOP, "accept-language": "de-CH, en;q=0.5"}, "x=1"),
        ({"user-agent": DESKTOP}, "lang=de"),
        ({"user-agent": DESKTOP}, "de"),
    ]
    async with rpc_client(app, await new_key(app, clock, "edge", proxy=True)) as edge:
        for headers, query in visits:
            response = await anon.get(f"/{code}?{query}" if query else f"/{code}", headers=headers)
            assert response.status_code == 302
            # An edge proxy names the visitor.
            named = pb.ResolveLinkRequest(
                code=code,
                query=query,
                client_ip="192.0.2.1",
                user_agent=headers["user-agent"],
                accept_language=headers.get("accept-language", ""),
            )
            by_edge = (await edge.ok("ResolveLink", named)).message
            assert by_edge.location == response.headers["location"]
            if headers["user-agent"] == DESKTOP:
                # A caller is its own visitor, by its metadata (gRPC writes the
                # user-agent entry itself, so that only its languages are the test's).
                language = [("accept-language", headers.get("accept-language", ""))]
                own = pb.ResolveLinkRequest(code=code, query=query)
                by_own = (await rpc.ok("ResolveLink", own, metadata=language)).message
                assert by_own.location == response.headers["location"]
