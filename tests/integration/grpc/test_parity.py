"""REST and gRPC answer alike: the same scenarios through both APIs of one running app.

Each test drives both APIs against the same database (SQLite and PostgreSQL) and
compares the answers structurally: a Link message with the REST JSON, a status code
and its google.rpc details with the problem+json REST sends. This module: creating,
reading, listing and deleting links; test_parity_*.py: the other scenarios."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import pytest
from fastapi import FastAPI

from kurz.db.keyset import encode_cursor
from kurz.grpc.kurz.v1 import links_pb2 as pb
from tests.conftest import BASE_URL
from tests.integration.grpc.support import (
    Rpc,
    assert_same_failure,
    create_request,
    instant,
    new_key,
    proto_field,
    proto_link,
    rest_client,
    rest_get,
    rest_link,
    rpc_create,
    rpc_get,
    without_code,
)
from tests.integration.links.support import create
from tests.support import FakeClock


@pytest.mark.parametrize(
    "body",
    [
        {"url": "https://example.com/"},
        {
            "url": "https://example.com/a?b=1",
            "valid_from": "2026-01-15T08:00:00-05:00",
            "expires_at": "2026-02-01T12:30:00+01:00",
            "max_visits": 3,
            "redirect_status": 301,
            "forward_query": True,
            "tags": ["x", "y", "x"],
            "password": "open sesame",
            "og_title": "A title",
            "og_description": "A description",
            "og_image": "https://img.example/card.png",
        },
    ],
    ids=["defaults", "every-field"],
)
async def test_create_makes_the_same_link(
    api: httpx.AsyncClient, rpc: Rpc, body: dict[str, Any]
) -> None:
    by_rest = rest_link(await create(api, **body))
    by_rpc = await rpc_create(rpc, **body)
    assert by_rpc["code"] != by_rest["code"]
    assert without_code(by_rpc) == without_code(by_rest)
    assert by_rpc["short_url"] == f"{BASE_URL}/{by_rpc['code']}"
    assert by_rpc["version"] == 1
    # Each API reads the other's link as that one rendered it.
    assert await rest_get(api, by_rpc["code"]) == by_rpc
    assert await rpc_get(rpc, by_rest["code"]) == by_rest


async def test_create_with_every_field_keeps_them(rpc: Rpc) -> None:
    made = await rpc_create(
        rpc,
        valid_from="2026-01-15T08:00:00-05:00",
        expires_at="2026-02-01T12:30:00+01:00",
        max_visits=3,
        redirect_status=301,
        forward_query=True,
        tags=["x", "y", "x"],
        password="open sesame",
        og_title="A title",
        og_description="A description",
        og_image="https://img.example/card.png",
    )
    assert made["valid_from"] == instant("2026-01-15T13:00:00Z")
    assert made["expires_at"] == instant("2026-02-01T11:30:00Z")
    assert (made["max_visits"], made["redirect_status"], made["forward_query"]) == (3, 301, True)
    assert made["tags"] == ["x", "y"]
    assert made["password_protected"] is True
    assert (made["og_title"], made["og_description"], made["og_image"]) == (
        "A title",
        "A description",
        "https://img.example/card.png",
    )


async def test_an_alias_taken_through_one_api_is_taken_for_the_other(
    api: httpx.AsyncClient, rpc: Rpc
) -> None:
    by_rpc = await rpc_create(rpc, alias="spring-sale")
    assert (by_rpc["code"], by_rpc["alias"]) == ("spring-sale", True)
    by_rest = await create(api, alias="summer-sale")
    for alias in ("spring-sale", "summer-sale"):
        body = {"url": "https://example.org/", "alias": alias}
        response = await api.post("/api/v1/links", json=body)
        failure = await rpc.fails("CreateLink", create_request(body))
        assert response.status_code == 409
        assert failure.code == grpc.StatusCode.ALREADY_EXISTS
        assert failure.info.reason == "ALIAS_TAKEN"
        assert_same_failure(response, failure)
    # Neither attempt changed the links that hold the aliases.
    assert await rest_get(api, "spring-sale") == by_rpc
    assert await rpc_get(rpc, "summer-sale") == rest_link(by_rest)


async def test_links_that_are_not_there_are_not_found_alike(
    app: FastAPI, api: httpx.AsyncClient, rpc: Rpc, clock: FakeClock
) -> None:
    async with rest_client(app, await new_key(app, clock, "bob")) as bob:
        bobs = await create(bob, url="https://bob.example/")
    # No such code; one that cannot be a code; another key's link.
    for code in ("nope123", "x" * 65, bobs["code"]):
        response = await api.get(f"/api/v1/links/{code}")
        failure = await rpc.fails("GetLink", pb.GetLinkRequest(code=code))
        assert response.status_code == 404
        assert failure.code == grpc.StatusCode.NOT_FOUND
        assert assert_same_failure(response, failure)["type"] == "/problems/not-found"


# Bad input


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"url": "javascript:alert(1)"}, {"url"}),
        ({"url": "https://"}, {"url"}),
        ({"url": f"{BASE_URL}/loop"}, {"url"}),
        ({"url": "https://example.com/", "max_visits": 0}, {"max_visits"}),
        ({"url": "https://example.com/", "alias": "a b"}, {"alias"}),
        ({"url": "https://example.com/", "alias": "api"}, {"alias"}),
        ({"url": "https://example.com/", "redirect_status": 303}, {"redirect_status"}),
        ({"url": "https://example.com/", "tags": ["ok", "  "]}, {"tags.1"}),
        ({"url": "https://example.com/", "tags": [f"t{n}" for n in range(21)]}, {"tags"}),
        ({"url": "https://example.com/", "expires_at": "2025-06-01T00:00:00Z"}, {"expires_at"}),
        (
            {"url": "ftp://example.com/", "max_visits": 0, "redirect_status": 200, "alias": "!"},
            {"url", "max_visits", "redirect_status", "alias"},
        ),
    ],
    ids=[
        "javascript-url", "no-host", "loop", "max-visits-0", "alias-space", "alias-reserved",
        "redirect-303", "blank-tag", "too-many-tags", "expired", "four-at-once",
    ],
)  # fmt: skip
async def test_bad_bodies_are_refused_alike(
    api: httpx.AsyncClient, rpc: Rpc, body: dict[str, Any], fields: set[str]
) -> None:
    response = await api.post("/api/v1/links", json=body)
    failure = await rpc.fails("CreateLink", create_request(body))
    assert response.status_code == 422
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.info.reason == "VALIDATION_ERROR"
    assert {e["field"] for e in response.json()["errors"]} == fields
    # The proto's names: expire_time, not expires_at.
    assert set(failure.violations) == {proto_field(field) for field in fields}
    assert_same_failure(response, failure)
    # Nothing was made by either.
    assert (await rpc.ok("ListLinks", pb.ListLinksRequest())).message.links == []


# Lists

# More pages than any test makes: a cursor that never ends fails, rather than loops.
MOST_PAGES = 10
Page = tuple[list[dict[str, Any]], str | None]


async def rest_pages(api: httpx.AsyncClient, **params: Any) -> list[Page]:
    pages: list[Page] = []
    for _ in range(MOST_PAGES):
        response = await api.get("/api/v1/links", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(([rest_link(item) for item in body["items"]], body["next_cursor"]))
        if body["next_cursor"] is None:
            return pages
        params = {**params, "cursor": body["next_cursor"]}
    raise AssertionError(f"more than {MOST_PAGES} pages: {pages}")


async def rpc_pages(rpc: Rpc, **fields: Any) -> list[Page]:
    pages: list[Page] = []
    token = ""
    for _ in range(MOST_PAGES):
        request = pb.ListLinksRequest(page_token=token, **fields)
        reply = (await rpc.ok("ListLinks", request)).message
        token = reply.next_page_token
        pages.append(([proto_link(link) for link in reply.links], token or None))
        if not token:
            return pages
    raise AssertionError(f"more than {MOST_PAGES} pages: {pages}")


async def test_list_pages_are_the_same_pages(api: httpx.AsyncClient, rpc: Rpc) -> None:
    made = []
    for n in range(5):
        tags = ["red"] if n % 2 == 0 else ["blue"]
        made.append(
            await rpc_create(rpc, tags=tags) if n % 2 else rest_link(await create(api, tags=tags))
        )
    newest_first = made[::-1]

    by_rest = await rest_pages(api, limit=2)
    by_rpc = await rpc_pages(rpc, page_size=2)
    # Same links, same page breaks, and the page tokens are REST's cursors.
    assert by_rpc == by_rest
    assert [len(items) for items, _ in by_rpc] == [2, 2, 1]
    assert [link for items, _ in by_rpc for link in items] == newest_first

    red = await rpc_pages(rpc, page_size=2, tag="red")
    assert red == await rest_pages(api, limit=2, tag="red")
    assert [link for items, _ in red for link in items] == newest_first[::2]

    # Without a size, both give their default page (20): everything, on one page.
    assert await rpc_pages(rpc) == await rest_pages(api) == [(newest_first, None)]


async def test_searches_are_the_same_pages(api: httpx.AsyncClient, rpc: Rpc) -> None:
    for n, name in enumerate(["pear", "apple", "plum", "apricot", "peach"]):
        tags = ["fruit", "stone"] if name.startswith("p") else ["fruit"]
        body = {"alias": name, "og_title": f"Fresh {name.upper()}", "tags": tags}
        await (rpc_create(rpc, **body) if n % 2 else create(api, **body))
    searches: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"q": "FRESH P"}, {"query": "FRESH P"}),
        ({"q": "ap", "sort": "code"}, {"query": "ap", "order_by": "code"}),
        ({"tag": ["fruit", "stone"], "sort": "oldest"}, {"tags": ["fruit", "stone"],
         "order_by": "oldest"}),
        # REST's one tag is the proto's `tag`, or one entry of `tags`, or both.
        ({"tag": ["stone", "fruit"]}, {"tag": "stone", "tags": ["fruit"]}),
        ({"q": "fresh", "tag": "stone", "sort": "code"}, {"query": "fresh", "tag": "stone",
         "order_by": "code"}),
    ]  # fmt: skip
    for params, fields in searches:
        by_rest = await rest_pages(api, limit=2, **params)
        assert await rpc_pages(rpc, page_size=2, **fields) == by_rest
        assert len(by_rest[0][0]) == 2
    coded = await rest_pages(api, limit=2, q="ap", sort="code")
    assert [link["code"] for items, _ in coded for link in items] == ["apple", "apricot"]


@pytest.mark.parametrize(
    ("params", "request_fields", "violations"),
    [
        ({"q": "tab\there"}, {"query": "tab\there"}, {"query"}),
        ({"tag": ["fine", " "]}, {"tags": ["fine", " "]}, {"tag"}),
        ({"tag": "fine", "cursor": encode_cursor(1), "sort": "code"},
         {"tag": "fine", "page_token": encode_cursor(1), "order_by": "code"}, {"page_token"}),
    ],
    ids=["control-in-q", "blank-tag", "cursor-of-another-sort"],
)  # fmt: skip
async def test_search_refusals_are_alike(
    api: httpx.AsyncClient,
    rpc: Rpc,
    params: dict[str, Any],
    request_fields: dict[str, Any],
    violations: set[str],
) -> None:
    response = await api.get("/api/v1/links", params=params)
    failure = await rpc.fails("ListLinks", pb.ListLinksRequest(**request_fields))
    assert response.status_code == 422
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(failure.violations) == violations
    assert_same_failure(response, failure)


@pytest.mark.parametrize(
    ("params", "request_fields", "same_detail"),
    [
        ({"cursor": "bogus"}, {"page_token": "bogus"}, True),
        ({"tag": "   "}, {"tag": "   "}, True),
        # FastAPI words its own query checks; the servicer says what 0 means.
        ({"limit": 101}, {"page_size": 101}, False),
        ({"limit": -1}, {"page_size": -1}, False),
        ({"tag": "t" * 65}, {"tag": "t" * 65}, False),
        # FastAPI checks the length and the choice of sort first, in its words.
        ({"q": "q" * 201}, {"query": "q" * 201}, False),
        ({"sort": "clicks"}, {"order_by": "clicks"}, False),
    ],
    ids=["cursor", "tag", "too-many", "negative", "long-tag", "long-q", "sort"],
)
async def test_list_refusals_are_alike(
    api: httpx.AsyncClient,
    rpc: Rpc,
    params: dict[str, Any],
    request_fields: dict[str, Any],
    same_detail: bool,
) -> None:
    response = await api.get("/api/v1/links", params=params)
    failure = await rpc.fails("ListLinks", pb.ListLinksRequest(**request_fields))
    assert response.status_code == 422
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(failure.violations) == set(request_fields)
    assert_same_failure(response, failure, same_detail=same_detail)


# Deletes


async def test_a_deleted_link_is_gone_for_both_and_its_code_stays_taken(
    api: httpx.AsyncClient, rpc: Rpc, anon: httpx.AsyncClient
) -> None:
    # Each made through one API and deleted through the other.
    await rpc_create(rpc, alias="gone-by-rest")
    await create(api, alias="gone-by-rpc")
    assert (await api.delete("/api/v1/links/gone-by-rest")).status_code == 204
    reply = await rpc.ok("DeleteLink", pb.DeleteLinkRequest(code="gone-by-rpc"))
    assert reply.message.ByteSize() == 0

    for code in ("gone-by-rest", "gone-by-rpc"):
        response = await api.get(f"/api/v1/links/{code}")
        failure = await rpc.fails("GetLink", pb.GetLinkRequest(code=code))
        assert failure.code == grpc.StatusCode.NOT_FOUND
        assert_same_failure(response, failure)

        response = await api.delete(f"/api/v1/links/{code}")
        failure = await rpc.fails("DeleteLink", pb.DeleteLinkRequest(code=code))
        assert response.status_code == 404
        assert_same_failure(response, failure)

        response = await anon.get(f"/{code}")
        failure = await rpc.fails("ResolveLink", pb.ResolveLinkRequest(code=code))
        assert failure.info.reason == "LINK_NOT_FOUND"
        assert_same_failure(response, failure)

        # The code is never given out again.
        body = {"url": "https://example.org/", "alias": code}
        response = await api.post("/api/v1/links", json=body)
        failure = await rpc.fails("CreateLink", create_request(body))
        assert failure.code == grpc.StatusCode.ALREADY_EXISTS
        assert_same_failure(response, failure)


async def test_delete_at_the_current_version(api: httpx.AsyncClient, rpc: Rpc) -> None:
    code = (await create(api))["code"]
    await rpc.ok("DeleteLink", pb.DeleteLinkRequest(code=code, expected_version=1))
    assert (await api.get(f"/api/v1/links/{code}")).status_code == 404
