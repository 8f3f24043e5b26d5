"""The stats API, read from rollup rows seeded directly, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from kurz.db import READ_COMMITTED
from kurz.db.tables import link_breakdowns_daily, link_clicks_daily, link_clicks_hourly, links
from tests.conftest import KeyMaker
from tests.integration.links.support import create
from tests.support import FakeClock

PROBLEM = "application/problem+json"
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
# FakeClock starts here.
NEW_YEAR = datetime(2026, 1, 1, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    """As the API renders a UTC time."""
    return moment.isoformat().replace("+00:00", "Z")


class Seed:
    """Rollup rows for one link, as the click store would have written them."""

    def __init__(self, app: FastAPI, link_id: int) -> None:
        self.app = app
        self.link_id = link_id
        self.rows: dict[sa.Table, list[dict[str, Any]]] = {}

    def hour(self, hour: str, clicks: int, uniques: int, bots: int = 0) -> Seed:
        row = {"hour": at(hour), "clicks": clicks, "uniques": uniques, "bot_clicks": bots}
        return self._add(link_clicks_hourly, row)

    def day(self, day: str, clicks: int, uniques: int, bots: int = 0) -> Seed:
        row = {"day": at(day), "clicks": clicks, "uniques": uniques, "bot_clicks": bots}
        return self._add(link_clicks_daily, row)

    def value(self, day: str, dimension: str, value: str, clicks: int) -> Seed:
        row = {"day": at(day), "dimension": dimension, "value": value, "clicks": clicks}
        return self._add(link_breakdowns_daily, row)

    def _add(self, table: sa.Table, row: dict[str, Any]) -> Seed:
        self.rows.setdefault(table, []).append({"link_id": self.link_id, **row})
        return self

    async def write(self) -> None:
        async with self.app.state.kurz.db.write(READ_COMMITTED) as conn:
            for table, rows in self.rows.items():
                await conn.execute(sa.insert(table), rows)


async def link_id(app: FastAPI, code: str) -> int:
    async with app.state.kurz.db.read() as conn:
        found = await conn.execute(sa.select(links.c.id).where(links.c.code == code))
        return int(found.scalar_one())


async def seeded(app: FastAPI, api: httpx.AsyncClient) -> tuple[str, Seed]:
    link = await create(api)
    return link["code"], Seed(app, await link_id(app, link["code"]))


async def stats(api: httpx.AsyncClient, code: str, **params: Any) -> dict[str, Any]:
    response = await api.get(f"/api/v1/links/{code}/stats", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def series(body: dict[str, Any]) -> list[tuple[str, int, int, int]]:
    return [(p["at"], p["clicks"], p["uniques"], p["bot_clicks"]) for p in body["series"]]


def top(body: dict[str, Any], dimension: str) -> list[tuple[str, int]]:
    return [(item["value"], item["clicks"]) for item in body["top"][dimension]]


async def test_daily_stats_are_zero_filled_with_totals_and_top_values(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    code, seed = await seeded(app, api)
    other_code, other = await seeded(app, api)
    (
        seed.day("2025-12-27", 100, 90)  # before the range
        .day("2025-12-28", 10, 7, bots=2)
        .day("2025-12-30", 5, 4)
        .day("2026-01-01", 100, 90)  # `to` is exclusive
        # Hourly rows are not what interval=day reads.
        .hour("2025-12-29 10:00", 1_000, 1_000)
        .value("2025-12-28", "referrer", "(direct)", 6)
        .value("2025-12-28", "referrer", "news.example", 4)
        .value("2025-12-30", "referrer", "blog.example", 4)
        .value("2025-12-30", "referrer", "news.example", 1)
        .value("2025-12-27", "referrer", "old.example", 99)
        .value("2026-01-01", "referrer", "late.example", 99)
        .value("2025-12-28", "country", "DE", 10)
        .value("2025-12-30", "country", "(unknown)", 5)
        .value("2025-12-28", "bot", "Googlebot", 2)
    )
    await seed.write()
    await (
        other.day("2025-12-29", 50, 50).value("2025-12-29", "referrer", "other.example", 50).write()
    )

    body = await stats(api, code, **{"from": "2025-12-28T00:00:00Z", "to": "2026-01-01T00:00:00Z"})

    assert (body["code"], body["interval"]) == (code, "day")
    assert (body["from"], body["to"]) == ("2025-12-28T00:00:00Z", "2026-01-01T00:00:00Z")
    assert series(body) == [
        ("2025-12-28T00:00:00Z", 10, 7, 2),
        ("2025-12-29T00:00:00Z", 0, 0, 0),
        ("2025-12-30T00:00:00Z", 5, 4, 0),
        ("2025-12-31T00:00:00Z", 0, 0, 0),
    ]
    assert body["totals"] == {"clicks": 15, "uniques": 11, "bot_clicks": 2}
    assert (body["top"]["from"], body["top"]["to"]) == (body["from"], body["to"])
    # Summed over the range's days only, most clicks first.
    assert top(body, "referrer") == [("(direct)", 6), ("news.example", 5), ("blog.example", 4)]
    assert top(body, "country") == [("DE", 10), ("(unknown)", 5)]
    assert top(body, "bot") == [("Googlebot", 2)]
    assert top(body, "browser") == top(body, "os") == top(body, "device") == []
    assert top(body, "variant") == []
    assert set(body["top"]) == {
        "from", "to", "referrer", "browser", "os", "device", "country", "city", "bot",
        "variant",
    }  # fmt: skip

    limited = await stats(
        api, code, top=2, **{"from": "2025-12-28T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
    )
    assert top(limited, "referrer") == [("(direct)", 6), ("news.example", 5)]
    # The other link's rows stay its own.
    assert (await stats(api, other_code))["totals"]["clicks"] == 50


async def test_ties_rank_by_value_in_code_point_order(app: FastAPI, api: httpx.AsyncClient) -> None:
    code, seed = await seeded(app, api)
    for value in ("b.example", "B.example", "a.example", "(direct)", "Z.example"):
        seed.value("2025-12-31", "referrer", value, 3)
    await seed.value("2025-12-31", "referrer", "z.example", 4).write()
    body = await stats(api, code)
    assert [value for value, _ in top(body, "referrer")] == [
        "z.example", "(direct)", "B.example", "Z.example", "a.example", "b.example",
    ]  # fmt: skip
    # The cut falls among equals: the database ranks them as it is told, too.
    cut = await stats(api, code, top=3)
    assert top(cut, "referrer") == [("z.example", 4), ("(direct)", 3), ("B.example", 3)]


async def test_hourly_stats_widen_to_whole_hours_and_top_values_to_whole_days(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    code, seed = await seeded(app, api)
    (
        seed.hour("2025-12-31 08:00", 50, 50)  # before the widened range
        .hour("2025-12-31 09:00", 3, 2, bots=1)
        .hour("2025-12-31 12:00", 4, 4)
        .hour("2025-12-31 13:00", 60, 60)  # after it
        # The day's uniques are not the sum of its hours': interval=hour never reads them.
        .day("2025-12-31", 117, 80)
        .value("2025-12-31", "browser", "Firefox", 117)
        .value("2025-12-30", "browser", "Safari", 9)
    )
    await seed.write()

    # 09:20 UTC to 12:05 UTC, widened to 09:00 .. 13:00.
    body = await stats(
        api,
        code,
        interval="hour",
        **{"from": "2025-12-31T10:20:00+01:00", "to": "2025-12-31T12:05:00Z"},
    )

    assert (body["from"], body["to"]) == ("2025-12-31T09:00:00Z", "2025-12-31T13:00:00Z")
    assert series(body) == [
        ("2025-12-31T09:00:00Z", 3, 2, 1),
        ("2025-12-31T10:00:00Z", 0, 0, 0),
        ("2025-12-31T11:00:00Z", 0, 0, 0),
        ("2025-12-31T12:00:00Z", 4, 4, 0),
    ]
    # Visitor-hours: the sum of the points.
    assert body["totals"] == {"clicks": 7, "uniques": 6, "bot_clicks": 1}
    # Breakdowns are daily: the whole of 2025-12-31, and not the day before.
    assert (body["top"]["from"], body["top"]["to"]) == (
        "2025-12-31T00:00:00Z",
        "2026-01-01T00:00:00Z",
    )
    assert top(body, "browser") == [("Firefox", 117)]

    # The same day by interval=day: the day's own uniques.
    daily = await stats(api, code, **{"from": "2025-12-31T09:20:00Z", "to": "2025-12-31T12:05:00Z"})
    assert (daily["from"], daily["to"]) == ("2025-12-31T00:00:00Z", "2026-01-01T00:00:00Z")
    assert series(daily) == [("2025-12-31T00:00:00Z", 117, 80, 0)]


async def test_an_aligned_range_is_not_widened(app: FastAPI, api: httpx.AsyncClient) -> None:
    code, seed = await seeded(app, api)
    await seed.hour("2025-12-31 22:00", 1, 1).hour("2025-12-31 23:00", 2, 2).write()
    body = await stats(
        api, code, interval="hour", **{"from": "2025-12-31T23:00:00Z", "to": "2026-01-01T00:00:00Z"}
    )
    assert series(body) == [("2025-12-31T23:00:00Z", 2, 2, 0)]


async def test_defaults_are_the_last_30_days_or_24_hours_up_to_now(
    app: FastAPI, api: httpx.AsyncClient, clock: FakeClock
) -> None:
    code, seed = await seeded(app, api)
    clock.advance((9 * DAY + 12.5 * HOUR).total_seconds())  # 2026-01-10 12:30 UTC
    (
        seed.day("2025-12-10", 100, 100)  # 31 days back: outside
        .day("2025-12-11", 1, 1)
        .day("2026-01-10", 2, 2)
        .hour("2026-01-09 11:00", 100, 100)
        .hour("2026-01-09 12:00", 3, 3)
        .hour("2026-01-10 12:00", 4, 4)
    )
    await seed.write()

    daily = await stats(api, code)
    assert (daily["from"], daily["to"]) == ("2025-12-11T00:00:00Z", "2026-01-11T00:00:00Z")
    assert len(daily["series"]) == 31
    assert daily["totals"]["clicks"] == 3

    hourly = await stats(api, code, interval="hour")
    assert (hourly["from"], hourly["to"]) == ("2026-01-09T12:00:00Z", "2026-01-10T13:00:00Z")
    assert len(hourly["series"]) == 25
    assert hourly["totals"]["clicks"] == 7

    # Only `to`: the default span before it. Only `from`: up to now.
    until = await stats(api, code, interval="hour", to="2026-01-09T13:00:00Z")
    assert (until["from"], until["to"]) == ("2026-01-08T13:00:00Z", "2026-01-09T13:00:00Z")
    assert until["totals"]["clicks"] == 103
    since = await stats(api, code, **{"from": "2026-01-10T00:00:00Z"})
    assert (since["from"], since["to"]) == ("2026-01-10T00:00:00Z", "2026-01-11T00:00:00Z")
    assert series(since) == [("2026-01-10T00:00:00Z", 2, 2, 0)]


async def test_the_longest_ranges_allowed(app: FastAPI, api: httpx.AsyncClient) -> None:
    code, seed = await seeded(app, api)
    await seed.hour("2025-12-01 00:00", 1, 1).day("2023-01-01", 2, 2).write()
    hourly = await stats(
        api, code, interval="hour", **{"from": "2025-12-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
    )
    assert len(hourly["series"]) == 744
    assert hourly["totals"]["clicks"] == 1
    daily = await stats(api, code, **{"from": "2023-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"})
    assert len(daily["series"]) == 1_096
    assert daily["totals"]["clicks"] == 2


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2025-12-01T00:00:00"}, "from"),  # no offset
        ({"to": "2025-12-31T00:00:00"}, "to"),
        ({"from": "2025-12-31T00:00:00Z", "to": "2025-12-31T00:00:00Z"}, "from"),
        ({"from": "2025-12-31T00:00:00Z", "to": "2025-12-30T00:00:00Z"}, "from"),
        # 745 hours once widened; 1,097 days.
        (
            {"interval": "hour", "from": "2025-12-01T00:00:00Z", "to": "2026-01-01T00:30:00Z"},
            "from",
        ),
        ({"from": "2022-12-31T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        ({"to": "9999-12-31T23:30:00Z"}, "to"),
        ({"from": "yesterday"}, "from"),
        ({"interval": "week"}, "interval"),
        ({"top": "0"}, "top"),
        ({"top": "101"}, "top"),
    ],
)
async def test_bad_ranges_are_422_problems(
    app: FastAPI, api: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    code, _ = await seeded(app, api)
    response = await api.get(f"/api/v1/links/{code}/stats", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "/problems/validation-error"
    assert [(e["field"], e["in"]) for e in body["errors"]] == [(field, "query")]


async def test_unknown_deleted_and_malformed_codes_are_404(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    code, seed = await seeded(app, api)
    await seed.day("2025-12-31", 1, 1).write()
    assert (await api.delete(f"/api/v1/links/{code}")).status_code == 204
    for path in (code, "nothere", "not%20a%20code"):
        response = await api.get(f"/api/v1/links/{path}/stats")
        assert response.status_code == 404, path
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["status"] == 404


async def test_another_keys_link_is_404_and_admin_sees_it(
    app: FastAPI,
    api: httpx.AsyncClient,
    make_key: KeyMaker,
    client_for: Callable[[str], httpx.AsyncClient],
) -> None:
    code, seed = await seeded(app, api)
    await seed.day("2025-12-31", 8, 5).write()
    async with client_for(await make_key("bob")) as bob:
        response = await bob.get(f"/api/v1/links/{code}/stats")
        assert response.status_code == 404
        assert response.json()["detail"] == f"No link with code '{code}'."
    async with client_for(await make_key("root", admin=True)) as admin:
        assert (await stats(admin, code))["totals"]["clicks"] == 8


async def test_summary_totals_only_the_callers_links(
    app: FastAPI,
    api: httpx.AsyncClient,
    make_key: KeyMaker,
    client_for: Callable[[str], httpx.AsyncClient],
) -> None:
    first, a = await seeded(app, api)
    second, b = await seeded(app, api)
    bots_only, c = await seeded(app, api)
    deleted, d = await seeded(app, api)
    await (
        a.day("2025-12-20", 10, 8, bots=1).day("2025-12-31", 5, 5).day("2025-11-01", 900, 1).write()
    )
    await b.day("2025-12-25", 20, 9).hour("2025-12-25 10:00", 999, 999).write()
    await c.day("2025-12-26", 0, 0, bots=7).write()
    await d.day("2025-12-26", 40, 40).write()
    assert (await api.delete(f"/api/v1/links/{deleted}")).status_code == 204
    async with client_for(await make_key("bob")) as bob:
        theirs, e = await seeded(app, bob)
        await e.day("2025-12-30", 30, 30).write()
        response = await bob.get("/api/v1/stats")
        assert response.status_code == 200
        assert response.json()["totals"] == {
            "clicks": 30, "uniques": 30, "bot_clicks": 0, "links_clicked": 1,
        }  # fmt: skip

    response = await api.get("/api/v1/stats")
    assert response.status_code == 200, response.text
    body = response.json()
    # 30 days up to the FakeClock's 2026-01-01 00:00, already a whole day.
    assert (body["from"], body["to"]) == ("2025-12-02T00:00:00Z", "2026-01-01T00:00:00Z")
    assert body["totals"] == {"clicks": 35, "uniques": 22, "bot_clicks": 8, "links_clicked": 2}
    assert body["top_links"] == [{"code": second, "clicks": 20}, {"code": first, "clicks": 15}]

    ranged = (
        await api.get(
            "/api/v1/stats", params={"from": "2025-12-24T12:00:00Z", "to": "2025-12-31T00:00:00Z"}
        )
    ).json()
    assert (ranged["from"], ranged["to"]) == ("2025-12-24T00:00:00Z", "2025-12-31T00:00:00Z")
    assert ranged["totals"] == {"clicks": 20, "uniques": 9, "bot_clicks": 7, "links_clicked": 1}
    assert ranged["top_links"] == [{"code": second, "clicks": 20}]

    async with client_for(await make_key("root", admin=True)) as admin:
        everything = (await admin.get("/api/v1/stats")).json()
        assert everything["totals"] == {
            "clicks": 65, "uniques": 52, "bot_clicks": 8, "links_clicked": 3,
        }  # fmt: skip
        assert [item["code"] for item in everything["top_links"]] == [theirs, second, first]
    assert bots_only not in {item["code"] for item in everything["top_links"]}


async def test_summary_of_a_key_without_clicks_is_zero(api: httpx.AsyncClient) -> None:
    await create(api)
    body = (await api.get("/api/v1/stats")).json()
    assert body["totals"] == {"clicks": 0, "uniques": 0, "bot_clicks": 0, "links_clicked": 0}
    assert body["top_links"] == []


async def test_summary_rejects_bad_ranges(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/stats", params={"from": "2022-12-31T00:00:00Z"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert [(e["field"], e["in"]) for e in body["errors"]] == [("from", "query")]
    assert body["detail"] == "from: the range holds 1097 days once widened; at most 1096 (3 years)"


@pytest.mark.parametrize("path", ["/api/v1/stats", "/api/v1/links/abc/stats"])
async def test_stats_need_a_key(anon: httpx.AsyncClient, path: str) -> None:
    response = await anon.get(path)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"] == "Bearer"


async def test_the_openapi_document_describes_the_stats(anon: httpx.AsyncClient) -> None:
    spec = (await anon.get("/openapi.json")).json()
    operation = spec["paths"]["/api/v1/links/{code}/stats"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {
        "code",
        "from",
        "to",
        "interval",
        "top",
        "domain",
    }
    assert {"200", "401", "404", "422"} <= set(operation["responses"])
    assert "whole UTC days" in operation["description"]
    schema = spec["components"]["schemas"]["LinkStats"]
    assert {"from", "to", "totals", "series", "top"} <= set(schema["properties"])
    assert {"200", "401", "422"} <= set(spec["paths"]["/api/v1/stats"]["get"]["responses"])
