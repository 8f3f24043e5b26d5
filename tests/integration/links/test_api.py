"""The links REST API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import BASE_URL, KeyMaker
from tests.integration.links.support import create
from tests.support import FakeClock

PROBLEM = "application/problem+json"


async def test_create_returns_the_link_with_location_and_etag(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/v1/links",
        json={"url": "https://example.com/a?b=1", "tags": ["x", "y", "x"], "max_visits": 3},
    )
    assert response.status_code == 201
    link = response.json()
    assert response.headers["location"] == f"/api/v1/links/{link['code']}"
    assert response.headers["etag"] == '"1"'
    assert link["short_url"] == f"{BASE_URL}/{link['code']}"
    assert link["url"] == "https://example.com/a?b=1"
    assert link["alias"] is False
    assert link["tags"] == ["x", "y"]
    assert link["max_visits"] == 3
    assert link["redirect_status"] == 302
    assert link["forward_query"] is False
    assert link["valid_from"] is None
    assert link["expires_at"] is None
    assert link["version"] == 1
    assert set(link) == {
        "code", "domain", "short_url", "url", "alias", "created_at", "updated_at",
        "valid_from", "expires_at", "max_visits", "fallbacks", "redirect_status",
        "forward_query", "tags", "rules", "version", "created_by", "updated_by", "variants",
        "variant_choice", "password_protected", "og_title", "og_description", "og_image",
    }  # fmt: skip
    assert (link["variants"], link["variant_choice"]) == (None, None)


async def test_alias_is_used_as_the_code_and_conflicts_with_409(api: httpx.AsyncClient) -> None:
    link = await create(api, alias="spring-sale")
    assert (link["code"], link["alias"]) == ("spring-sale", True)
    again = await api.post("/api/v1/links", json={"url": "https://e.com/", "alias": "spring-sale"})
    assert again.status_code == 409
    assert again.headers["content-type"] == PROBLEM
    assert again.json()["type"] == "/problems/alias-taken"


async def test_get_round_trips_with_etag(api: httpx.AsyncClient) -> None:
    link = await create(api, tags=["t"])
    response = await api.get(f"/api/v1/links/{link['code']}")
    assert response.status_code == 200
    assert response.headers["etag"] == '"1"'
    assert response.json() == link


async def test_unknown_code_is_404_problem(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/links/nothere")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == 404


async def test_a_key_sees_only_its_own_links_and_admin_sees_all(
    api: httpx.AsyncClient,
    make_key: KeyMaker,
    client_for: Callable[[str], httpx.AsyncClient],
) -> None:
    mine = await create(api)
    async with client_for(await make_key("bob")) as bob:
        theirs = await create(bob)
        assert (await bob.get(f"/api/v1/links/{mine['code']}")).status_code == 404
        patch = await bob.patch(
            f"/api/v1/links/{mine['code']}", json={"url": "https://evil.example/"},
            headers={"If-Match": '"1"'},
        )  # fmt: skip
        assert patch.status_code == 404
        assert (await bob.delete(f"/api/v1/links/{mine['code']}")).status_code == 404
        listed = (await bob.get("/api/v1/links")).json()
        assert [item["code"] for item in listed["items"]] == [theirs["code"]]
    async with client_for(await make_key("root", admin=True)) as admin:
        codes = {item["code"] for item in (await admin.get("/api/v1/links")).json()["items"]}
        assert codes == {mine["code"], theirs["code"]}
        assert (await admin.get(f"/api/v1/links/{mine['code']}")).status_code == 200


async def test_list_pages_by_cursor_newest_first_without_gaps(api: httpx.AsyncClient) -> None:
    made = [(await create(api))["code"] for _ in range(7)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await api.get("/api/v1/links", params=params)).json()
        pages += 1
        seen.extend(item["code"] for item in page["items"])
        if pages == 1:
            # Links made while paging appear on no later page and shift nothing.
            await create(api)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))
    assert pages == 3


async def test_list_filters_by_tag(api: httpx.AsyncClient) -> None:
    red = await create(api, tags=["red"])
    await create(api, tags=["blue"])
    both = await create(api, tags=["red", "blue"])
    page = (await api.get("/api/v1/links", params={"tag": "red"})).json()
    assert [item["code"] for item in page["items"]] == [both["code"], red["code"]]
    assert page["next_cursor"] is None


@pytest.mark.parametrize("cursor", ["!!!", "aWQ6eA", "bm9wZTox", "a" * 64])
async def test_a_forged_cursor_is_rejected(api: httpx.AsyncClient, cursor: str) -> None:
    response = await api.get("/api/v1/links", params={"cursor": cursor})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "cursor"


async def test_patch_requires_if_match(api: httpx.AsyncClient) -> None:
    link = await create(api)
    response = await api.patch(f"/api/v1/links/{link['code']}", json={"url": "https://b.com/"})
    assert response.status_code == 428
    assert response.headers["content-type"] == PROBLEM


async def test_patch_with_current_etag_changes_and_bumps_the_version(
    api: httpx.AsyncClient, clock: FakeClock
) -> None:
    link = await create(api, tags=["old"], max_visits=5)
    clock.advance(60)
    response = await api.patch(
        f"/api/v1/links/{link['code']}",
        json={
            "url": "https://b.com/x",
            "tags": ["new"],
            "max_visits": None,
            "redirect_status": 308,
        },
        headers={"If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"2"'
    updated = response.json()
    assert updated["url"] == "https://b.com/x"
    assert updated["tags"] == ["new"]
    assert updated["max_visits"] is None
    assert updated["redirect_status"] == 308
    assert updated["version"] == 2
    assert updated["updated_at"] > link["updated_at"]
    assert updated["created_at"] == link["created_at"]


async def test_patch_with_stale_etag_is_412_and_changes_nothing(api: httpx.AsyncClient) -> None:
    link = await create(api)
    path = f"/api/v1/links/{link['code']}"
    first = await api.patch(path, json={"url": "https://one.com/"}, headers={"If-Match": '"1"'})
    assert first.status_code == 200
    stale = await api.patch(path, json={"url": "https://two.com/"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.headers["etag"] == '"2"'
    assert (await api.get(path)).json()["url"] == "https://one.com/"


@pytest.mark.parametrize(
    ("if_match", "status"),
    [
        ('"1"', 200), ('"7", "1"', 200), ("*", 200), ('W/"1"', 412), ('"2"', 412),
        ("1", 400), ("W/", 400), ("W/1", 400), ('"1", W/', 400),
    ],
)  # fmt: skip
async def test_if_match_forms(api: httpx.AsyncClient, if_match: str, status: int) -> None:
    link = await create(api)
    response = await api.patch(
        f"/api/v1/links/{link['code']}", json={"forward_query": True},
        headers={"If-Match": if_match},
    )  # fmt: skip
    assert response.status_code == status


async def test_a_weak_tag_is_412_saying_why(api: httpx.AsyncClient) -> None:
    # kurz's ETags are strong and If-Match compares strongly (RFC 9110 13.1.1): W/"1"
    # is well formed but can never match, so the precondition fails.
    link = await create(api)
    response = await api.patch(
        f"/api/v1/links/{link['code']}", json={"forward_query": True},
        headers={"If-Match": 'W/"1"'},
    )  # fmt: skip
    assert response.status_code == 412
    assert response.headers["etag"] == '"1"'
    assert "weak" in response.json()["detail"]


async def test_a_malformed_weak_tag_is_a_400_naming_it(api: httpx.AsyncClient) -> None:
    link = await create(api)
    response = await api.delete(f"/api/v1/links/{link['code']}", headers={"If-Match": "W/"})
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == "/problems/malformed-if-match"
    assert "W/" in problem["detail"]
    assert (await api.get(f"/api/v1/links/{link['code']}")).status_code == 200


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
async def test_a_huge_if_match_list_is_400_and_changes_nothing(
    api: httpx.AsyncClient, method: str
) -> None:
    # 40,000 distinct tags: past asyncpg's 32,767 bind parameters, and SQLite's.
    link = await create(api)
    path = f"/api/v1/links/{link['code']}"
    tags = ", ".join(f'"{n}"' for n in range(1, 40_001))
    body = {"forward_query": True} if method == "PATCH" else None
    response = await api.request(method, path, headers={"If-Match": tags}, json=body)
    assert response.status_code == 400, response.text[:300]
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "/problems/malformed-if-match"
    assert "32" in response.json()["detail"]
    assert (await api.get(path)).json()["version"] == 1


async def test_if_match_may_list_up_to_32_tags(api: httpx.AsyncClient) -> None:
    link = await create(api)
    tags = ", ".join(f'"{n}"' for n in range(32, 0, -1))
    response = await api.delete(f"/api/v1/links/{link['code']}", headers={"If-Match": tags})
    assert response.status_code == 204


async def test_patch_rejects_null_for_required_fields(api: httpx.AsyncClient) -> None:
    link = await create(api)
    response = await api.patch(
        f"/api/v1/links/{link['code']}", json={"url": None}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "url"


async def test_delete_then_the_code_is_gone_everywhere_and_never_reused(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    link = await create(api, alias="gone-soon")
    assert (await anon.get("/gone-soon")).status_code == 302
    response = await api.delete("/api/v1/links/gone-soon")
    assert response.status_code == 204
    assert (await api.get("/api/v1/links/gone-soon")).status_code == 404
    assert (await anon.get("/gone-soon")).status_code == 404
    assert (await api.delete("/api/v1/links/gone-soon")).status_code == 404
    assert link["code"] not in [i["code"] for i in (await api.get("/api/v1/links")).json()["items"]]
    reuse = await api.post("/api/v1/links", json={"url": "https://e.com/", "alias": "gone-soon"})
    assert reuse.status_code == 409


async def test_delete_honours_if_match_when_given(api: httpx.AsyncClient) -> None:
    link = await create(api)
    path = f"/api/v1/links/{link['code']}"
    assert (await api.delete(path, headers={"If-Match": '"9"'})).status_code == 412
    assert (await api.delete(path, headers={"If-Match": '"1"'})).status_code == 204


async def test_expires_at_must_be_in_the_future(api: httpx.AsyncClient, clock: FakeClock) -> None:
    response = await api.post(
        "/api/v1/links", json={"url": "https://e.com/", "expires_at": clock.iso(-1)}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "expires_at"
    ok = await create(api, expires_at=clock.iso(3600))
    assert ok["expires_at"] is not None


async def test_a_url_pointing_back_at_kurz_is_refused(api: httpx.AsyncClient) -> None:
    for url in (f"{BASE_URL}/abc", "http://KURZ.test/x", "https://kurz.test:443/"):
        response = await api.post("/api/v1/links", json={"url": url})
        assert response.status_code == 422, url
        assert response.json()["errors"][0]["field"] == "url"
    assert (await api.post("/api/v1/links", json={"url": "https://kurz.test:8443/"})).is_success
