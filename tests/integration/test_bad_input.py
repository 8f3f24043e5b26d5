"""No input, however malformed, gets a 500; every error is problem+json."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    return body


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b'{"url": ', 400),
        (b"\xff\xfe{}", 400),
        (b'{"url": "https://e.com/\xff"}', 400),
        (b"[" * 5000 + b"]" * 5000, 400),
        (b"null", 422),
        (b"[]", 422),
        (b'"https://e.com"', 422),
    ],
)
async def test_unparseable_bodies(api: httpx.AsyncClient, content: bytes, status: int) -> None:
    response = await api.post(
        "/api/v1/links", content=content, headers={"Content-Type": "application/json"}
    )
    assert_problem(response, status)


async def test_a_huge_body_is_413(api: httpx.AsyncClient) -> None:
    body = json.dumps({"url": "https://e.com/" + "a" * 200_000})
    response = await api.post(
        "/api/v1/links", content=body, headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 413)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "url"),
        ({"url": 5}, "url"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": "data:text/html,hi"}, "url"),
        ({"url": "file:///etc/passwd"}, "url"),
        ({"url": "https://"}, "url"),
        ({"url": "https://e.com/\x00"}, "url"),
        ({"url": "https://e.com/a\nb"}, "url"),
        ({"url": "https://user:pw@e.com/"}, "url"),
        ({"url": "https://e.com:99999/"}, "url"),
        ({"url": "https://" + "a" * 64 + ".com/"}, "url"),
        ({"url": "https://e.com/" + "a" * 9000}, "url"),
        ({"url": "https://e.com/", "alias": "ab"}, "alias"),
        ({"url": "https://e.com/", "alias": "a/b/c"}, "alias"),
        ({"url": "https://e.com/", "alias": "docs"}, "alias"),
        ({"url": "https://e.com/", "alias": "API"}, "alias"),
        ({"url": "https://e.com/", "alias": "x\x00yz"}, "alias"),
        ({"url": "https://e.com/", "max_visits": 0}, "max_visits"),
        ({"url": "https://e.com/", "max_visits": "5"}, "max_visits"),
        ({"url": "https://e.com/", "max_visits": True}, "max_visits"),
        ({"url": "https://e.com/", "max_visits": 2**70}, "max_visits"),
        ({"url": "https://e.com/", "redirect_status": 303}, "redirect_status"),
        ({"url": "https://e.com/", "forward_query": "yes"}, "forward_query"),
        ({"url": "https://e.com/", "expires_at": "tomorrow"}, "expires_at"),
        ({"url": "https://e.com/", "expires_at": "2030-01-01T00:00:00"}, "expires_at"),
        ({"url": "https://e.com/", "tags": "a"}, "tags"),
        ({"url": "https://e.com/", "tags": ["a\x00"]}, "tags.0"),
        ({"url": "https://e.com/", "tags": [" "]}, "tags.0"),
        ({"url": "https://e.com/", "tags": ["t"] * 21}, "tags"),
        ({"url": "https://e.com/", "colour": "red"}, "colour"),
    ],
)
async def test_invalid_fields_are_named(
    api: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    problem = assert_problem(await api.post("/api/v1/links", json=body), 422)
    assert field in [error["field"] for error in problem["errors"]], problem
    listed = (await api.get("/api/v1/links")).json()
    assert listed["items"] == [], "a rejected request must write nothing"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/links/%00",
        "/api/v1/links/a%00b",
        "/api/v1/links/" + "x" * 300,
        "/api/v1/links?limit=0",
        "/api/v1/links?limit=abc",
        "/api/v1/links?limit=1000",
        "/api/v1/links?tag=%00",
        "/api/v1/links?cursor=%00",
        "/api/v1/links?tag=" + "t" * 65,
    ],
)
async def test_hostile_paths_and_queries(api: httpx.AsyncClient, path: str) -> None:
    response = await api.get(path)
    assert response.status_code in (404, 422)
    assert response.headers["content-type"] == PROBLEM


async def test_unknown_route_and_wrong_method_are_problems(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get("/api/v2/nothing"), 404)
    response = await api.put("/api/v1/links")
    assert_problem(response, 405)
    assert "allow" in response.headers


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
link_fields = st.fixed_dictionaries(
    {},
    optional={
        "url": st.text() | st.just("https://e.com/") | json_values,
        "alias": st.from_regex(r"[A-Za-z0-9_\-]{0,70}", fullmatch=True) | json_values,
        "expires_at": st.datetimes().map(str) | json_values,
        "max_visits": st.integers() | json_values,
        "redirect_status": st.sampled_from([301, 302, 303, 307, 308, 0]) | json_values,
        "forward_query": st.booleans() | json_values,
        "tags": st.lists(st.text(max_size=70), max_size=25) | json_values,
    },
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=link_fields | json_values)
async def test_fuzzed_creates_never_fail_with_500(api: httpx.AsyncClient, body: Any) -> None:
    # allow_nan: Python's json (and so the server's parser) reads NaN and Infinity too.
    response = await api.post(
        "/api/v1/links",
        content=json.dumps(body, allow_nan=True),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code in (201, 409, 422), response.text
    if response.status_code != 201:
        assert response.headers["content-type"] == PROBLEM


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    raw=st.binary(max_size=300),
    content_type=st.sampled_from(["application/json", "text/plain", ""]),
)
async def test_fuzzed_raw_bodies_never_fail_with_500(
    api: httpx.AsyncClient, raw: bytes, content_type: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await api.post("/api/v1/links", content=raw, headers=headers)
    assert response.status_code in (201, 400, 409, 422), response.text
    if response.status_code != 201:
        assert response.headers["content-type"] == PROBLEM


async def test_a_streamed_body_over_the_limit_is_413(api: httpx.AsyncClient) -> None:
    async def chunks() -> Any:
        yield b'{"url": "https://e.com/'
        for _ in range(100):
            yield b"a" * 1024
        yield b'"}'

    response = await api.post(
        "/api/v1/links", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413)
