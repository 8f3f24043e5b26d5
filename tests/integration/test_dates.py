"""Date-times the API takes: RFC 3339 strings with an offset, representable in UTC."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.test_bad_input import assert_problem

# Each is a valid RFC 3339 string whose UTC instant lies past 9999-12-31T23:59:59Z or
# before 0001-01-01T00:00:00Z, which no database column (nor datetime) can hold.
OUT_OF_UTC = ["9999-12-31T23:59:59-23:59", "9999-12-31T23:00:00-01:00", "0001-01-01T00:00:00+01:00"]
# Numbers and numeric strings would be read as Unix time, which no one documents.
NOT_DATES: list[Any] = [0.5, 0, 1_900_000_000, "1900000000", "0.5", True, "2030-01-01"]


@pytest.mark.parametrize("when", OUT_OF_UTC + NOT_DATES)
async def test_create_refuses_what_is_no_date(api: httpx.AsyncClient, when: Any) -> None:
    response = await api.post("/api/v1/links", json={"url": "https://e.com/", "expires_at": when})
    problem = assert_problem(response, 422)
    assert [error["field"] for error in problem["errors"]] == ["expires_at"], problem
    assert (await api.get("/api/v1/links")).json()["items"] == []


@pytest.mark.parametrize("when", OUT_OF_UTC + NOT_DATES)
async def test_update_refuses_what_is_no_date(api: httpx.AsyncClient, when: Any) -> None:
    made = (await api.post("/api/v1/links", json={"url": "https://e.com/"})).json()
    response = await api.patch(
        f"/api/v1/links/{made['code']}", json={"expires_at": when}, headers={"If-Match": '"1"'}
    )
    problem = assert_problem(response, 422)
    assert [error["field"] for error in problem["errors"]] == ["expires_at"], problem
    assert (await api.get(f"/api/v1/links/{made['code']}")).json()["version"] == 1


async def test_the_last_representable_moment_is_taken(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/v1/links", json={"url": "https://e.com/", "expires_at": "9999-12-31T22:59:59-01:00"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["expires_at"].startswith("9999-12-31T23:59:59")


@pytest.mark.parametrize("param", ["from", "to"])
@pytest.mark.parametrize("when", ["0.5", "1900000000", "0", "2030-01-01"])
async def test_stats_ranges_refuse_numbers(api: httpx.AsyncClient, param: str, when: str) -> None:
    made = (await api.post("/api/v1/links", json={"url": "https://e.com/"})).json()
    for path in (f"/api/v1/links/{made['code']}/stats", "/api/v1/stats"):
        problem = assert_problem(await api.get(path, params={param: when}), 422)
        assert param in [error["field"] for error in problem["errors"]], problem
