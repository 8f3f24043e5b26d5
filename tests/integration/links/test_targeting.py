"""Targeting rules through the REST API and every way in: stored and shown as written,
refused with a 422 naming the rule and field, and asked by the fast path (an L1 hit,
no database read), the slow path and HEAD alike."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.integration.links.support import create
from tests.integration.links.test_pipeline import count_reads
from tests.support import FakeClock

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
APP_STORE = "https://apps.apple.com/app/id1"
GERMAN = "https://example.com/de"

RULES: list[dict[str, Any]] = [
    {"url": APP_STORE, "match": "all", "conditions": [{"type": "device", "in": ["ios"]}]},
    {
        "url": GERMAN,
        "match": "any",
        "conditions": [
            {"type": "language", "in": ["de"]},
            {"type": "query", "param": "lang", "equals": "de"},
        ],
    },
]


def location(response: httpx.Response) -> str:
    assert response.status_code == 302, response.text
    return response.headers["location"]


async def test_rules_are_shown_as_written_and_send_each_visitor_to_their_url(
    app: FastAPI, api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    link = await create(api, rules=RULES)
    code = link["code"]
    shown = [{**rule, "conditions": rule["conditions"]} for rule in link["rules"]]
    assert shown[0] == RULES[0]
    assert shown[1]["conditions"][1] == {"type": "query", "param": "lang", "equals": "de"}
    assert (await api.get(f"/api/v1/links/{code}")).json()["rules"] == link["rules"]

    # The first visit loads the link (the slow path); the rest are L1 hits.
    assert location(await anon.get(f"/{code}", headers={"user-agent": IPHONE})) == APP_STORE
    assert app.state.kurz.visits.cached(code, [(b"host", b"testserver")]) is not None
    reads = count_reads(app)
    desktop = {"user-agent": DESKTOP}
    assert location(await anon.get(f"/{code}", headers={"user-agent": IPHONE})) == APP_STORE
    assert location(await anon.get(f"/{code}", headers=desktop)) == "https://example.com/"
    german = {"user-agent": DESKTOP, "accept-language": "de-AT,de;q=0.9,en;q=0.5"}
    assert location(await anon.get(f"/{code}", headers=german)) == GERMAN
    english_first = {"user-agent": DESKTOP, "accept-language": "en,de;q=0.9"}
    assert location(await anon.get(f"/{code}", headers=english_first)) == "https://example.com/"
    assert location(await anon.get(f"/{code}?lang=de", headers=desktop)) == GERMAN
    head = await anon.head(f"/{code}", headers={"user-agent": IPHONE})
    assert (head.status_code, head.headers["location"]) == (302, APP_STORE)
    # A path the fast path does not take for a code: the follow route asks the same.
    assert location(await anon.get(f"/{code}/", headers={"user-agent": IPHONE})) == APP_STORE
    assert reads[0] == 0


async def test_the_slow_path_asks_the_rules_too(
    app: FastAPI, api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    code = (await create(api, rules=RULES, forward_query=True))["code"]
    for _ in range(2):
        app.state.kurz.targets.forget(code)
        response = await anon.get(f"/{code}?utm=x", headers={"user-agent": IPHONE})
        assert location(response) == f"{APP_STORE}?utm=x"


async def test_a_link_with_rules_and_a_window_still_asks_the_window(
    api: httpx.AsyncClient, anon: httpx.AsyncClient, clock: FakeClock
) -> None:
    code = (await create(api, rules=RULES, starts_at=clock.iso(60)))["code"]
    for _ in range(2):
        refused = await anon.get(f"/{code}", headers={"user-agent": IPHONE})
        assert refused.status_code == 410
    clock.advance(60)
    assert location(await anon.get(f"/{code}", headers={"user-agent": IPHONE})) == APP_STORE


async def test_a_time_condition_follows_the_servers_clock(
    api: httpx.AsyncClient, anon: httpx.AsyncClient, clock: FakeClock
) -> None:
    sale = {"type": "time", "from": clock.iso(60), "until": clock.iso(120)}
    code = (await create(api, rules=[{"url": "https://e.com/sale", "conditions": [sale]}]))["code"]
    assert location(await anon.get(f"/{code}")) == "https://example.com/"
    clock.advance(60)
    assert location(await anon.get(f"/{code}")) == "https://e.com/sale"
    clock.advance(60)
    assert location(await anon.get(f"/{code}")) == "https://example.com/"


async def test_a_patch_replaces_the_rules_and_null_clears_them(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    code = (await create(api, rules=RULES))["code"]
    iphone = {"user-agent": IPHONE}
    assert location(await anon.get(f"/{code}", headers=iphone)) == APP_STORE
    path = f"/api/v1/links/{code}"
    android = [{"url": "https://play.example/", "conditions": [RULES[0]["conditions"][0]]}]
    android[0]["conditions"] = [{"type": "device", "in": ["android"]}]
    changed = await api.patch(path, json={"rules": android}, headers={"If-Match": '"1"'})
    assert changed.status_code == 200, changed.text
    assert [rule["url"] for rule in changed.json()["rules"]] == ["https://play.example/"]
    assert location(await anon.get(f"/{code}", headers=iphone)) == "https://example.com/"
    # Other fields leave the rules alone.
    kept = await api.patch(path, json={"tags": ["x"]}, headers={"If-Match": '"2"'})
    assert len(kept.json()["rules"]) == 1
    cleared = await api.patch(path, json={"rules": None}, headers={"If-Match": '"3"'})
    assert cleared.json()["rules"] == []
    assert (await api.get(path)).json()["rules"] == []


def assert_invalid(response: httpx.Response, field: str, message: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert error["field"] == field
    assert message in error["message"]
    assert field in response.json()["detail"]


@pytest.mark.parametrize(
    ("condition", "field", "message"),
    [
        ({"type": "country", "in": ["DE", "XY"]}, "country.in.1", "not an ISO 3166-1"),
        ({"type": "language", "in": ["en_GB"]}, "language.in.0", "not a language tag"),
        ({"type": "device", "in": ["ios"], "os": "iOS"}, "device.os", "Extra inputs"),
    ],
)
async def test_a_bad_rule_is_a_422_naming_the_rule_and_the_field(
    api: httpx.AsyncClient, condition: dict[str, Any], field: str, message: str
) -> None:
    rules = [RULES[0], {"url": "https://e.com/", "conditions": [condition]}]
    response = await api.post("/api/v1/links", json={"url": "https://e.com/", "rules": rules})
    assert_invalid(response, f"rules.1.conditions.0.{field}", message)
    code = (await create(api))["code"]
    patched = await api.patch(f"/api/v1/links/{code}", json={"rules": rules})
    assert_invalid(patched, f"rules.1.conditions.0.{field}", message)
    assert (await api.get("/api/v1/links")).json()["items"][0]["rules"] == []


async def test_more_than_32_rules_are_refused(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/links", json={"url": "https://e.com/", "rules": RULES * 17})
    assert_invalid(response, "rules", "at most 32")


async def test_a_rule_may_not_send_visitors_back_to_this_kurz(api: httpx.AsyncClient) -> None:
    own = (await create(api))["short_url"]
    rules = [RULES[0], {"url": own, "conditions": RULES[0]["conditions"]}]
    response = await api.post("/api/v1/links", json={"url": "https://e.com/", "rules": rules})
    assert_invalid(response, "rules.1.url", "would redirect in a loop")
