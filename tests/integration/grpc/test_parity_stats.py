"""GetLinkStats against GET /api/v1/links/{code}/stats, and clicks through ResolveLink."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import pytest
from fastapi import FastAPI

from kurz.config import Settings
from kurz.grpc.kurz.v1 import links_pb2 as pb
from tests.integration.analytics.test_stats_api import Seed, link_id
from tests.integration.grpc.support import (
    Rpc,
    assert_same_failure,
    new_key,
    proto_stats,
    rest_client,
    rest_stats,
    rpc_client,
    rpc_create,
    serving,
    stamp,
)
from tests.integration.links.support import create
from tests.support import FakeClock, record_queued_clicks

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


async def rest_stats_of(api: httpx.AsyncClient, code: str, **params: Any) -> dict[str, Any]:
    response = await api.get(f"/api/v1/links/{code}/stats", params=params)
    assert response.status_code == 200, response.text
    return rest_stats(response.json())


async def rpc_stats_of(rpc: Rpc, code: str, **fields: Any) -> dict[str, Any]:
    reply = await rpc.ok("GetLinkStats", pb.GetLinkStatsRequest(code=code, **fields))
    return proto_stats(reply.message)


async def test_stats_are_the_same_stats(app: FastAPI, api: httpx.AsyncClient, rpc: Rpc) -> None:
    code = (await create(api))["code"]
    seed = Seed(app, await link_id(app, code))
    (
        seed.day("2025-12-28", 10, 7, bots=2)
        .day("2025-12-30", 5, 4)
        .hour("2025-12-31 09:00", 3, 2, bots=1)
        .hour("2025-12-31 12:00", 4, 4)
        .value("2025-12-28", "referrer", "(direct)", 6)
        .value("2025-12-28", "referrer", "news.example", 4)
        .value("2025-12-30", "referrer", "blog.example", 4)
        .value("2025-12-30", "country", "DE", 5)
        .value("2025-12-30", "city", "Berlin, DE", 3)
        .value("2025-12-31", "browser", "Firefox", 7)
        .value("2025-12-28", "bot", "Googlebot", 2)
    )
    await seed.write()

    days = await rest_stats_of(
        api, code, **{"from": "2025-12-28T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
    )
    assert days["totals"] == {"clicks": 15, "uniques": 11, "bot_clicks": 2}
    assert days == await rpc_stats_of(
        rpc,
        code,
        start_time=stamp("2025-12-28T00:00:00Z"),
        end_time=stamp("2026-01-01T00:00:00Z"),
        interval=pb.DAY,
    )

    hours = await rest_stats_of(
        api,
        code,
        interval="hour",
        top=1,
        **{"from": "2025-12-31T10:20:00+01:00", "to": "2025-12-31T12:05:00Z"},
    )
    assert len(hours["series"]) == 4
    assert hours["totals"]["clicks"] == 7
    assert hours == await rpc_stats_of(
        rpc,
        code,
        start_time=stamp("2025-12-31T10:20:00+01:00"),
        end_time=stamp("2025-12-31T12:05:00Z"),
        interval=pb.HOUR,
        top=1,
    )

    # No range, no interval, no top: the same defaults.
    defaults = await rest_stats_of(api, code)
    assert defaults["totals"]["clicks"] == 15
    assert defaults == await rpc_stats_of(rpc, code)


@pytest.mark.parametrize(
    ("params", "request_fields", "same_detail"),
    [
        (
            {"from": "2025-12-30T00:00:00Z", "to": "2025-12-29T00:00:00Z"},
            {
                "start_time": stamp("2025-12-30T00:00:00Z"),
                "end_time": stamp("2025-12-29T00:00:00Z"),
            },
            True,
        ),
        ({"from": "2020-01-01T00:00:00Z"}, {"start_time": stamp("2020-01-01T00:00:00Z")}, True),
        ({"interval": "week"}, {"interval": 7}, False),
        ({"top": 101}, {"top": 101}, False),
    ],
    ids=["reversed", "too-long", "interval", "top"],
)
async def test_stats_refusals_are_alike(
    api: httpx.AsyncClient,
    rpc: Rpc,
    params: dict[str, Any],
    request_fields: dict[str, Any],
    same_detail: bool,
) -> None:
    code = (await create(api))["code"]
    response = await api.get(f"/api/v1/links/{code}/stats", params=params)
    request = pb.GetLinkStatsRequest(code=code, **request_fields)
    failure = await rpc.fails("GetLinkStats", request)
    assert response.status_code == 422
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(failure.violations) <= set(request_fields)
    assert_same_failure(response, failure, same_detail=same_detail)


async def test_stats_of_a_link_that_is_not_there_are_not_found_alike(
    api: httpx.AsyncClient, rpc: Rpc
) -> None:
    for code in ("nope123", "not.a.code"):
        response = await api.get(f"/api/v1/links/{code}/stats")
        failure = await rpc.fails("GetLinkStats", pb.GetLinkStatsRequest(code=code))
        assert failure.code == grpc.StatusCode.NOT_FOUND
        assert_same_failure(response, failure)


async def test_a_resolve_counts_a_click_as_a_redirect_does(
    settings: Settings, clock: FakeClock
) -> None:
    async with serving(settings.model_copy(update={"analytics": True}), clock) as app:
        secret = await new_key(app, clock, proxy=True)
        async with (
            rest_client(app, secret) as api,
            rest_client(app, None) as anon,
            rpc_client(app, secret) as rpc,
        ):
            rest_code = (await create(api))["code"]
            rpc_code = (await rpc_create(rpc))["code"]
            headers = {"User-Agent": FIREFOX, "Referer": "https://www.news.example/a"}
            # The visitor an edge proxy saw: the REST client's address, agent and referer.
            visit = pb.ResolveLinkRequest(
                code=rpc_code,
                client_ip="127.0.0.1",
                user_agent=headers["User-Agent"],
                referer=headers["Referer"],
            )
            for _ in range(3):
                assert (await anon.get(f"/{rest_code}", headers=headers)).status_code == 302
                await rpc.ok("ResolveLink", visit)
            # Looks are not clicks, through either API.
            assert (await anon.head(f"/{rest_code}", headers=headers)).status_code == 302
            peek = pb.ResolveLinkRequest()
            peek.CopyFrom(visit)
            peek.peek = True
            await rpc.ok("ResolveLink", peek)
            await record_queued_clicks(app.state.kurz.analytics)
            clock.advance(3600)

            by_rest = await rest_stats_of(api, rest_code, interval="hour")
            by_rpc = await rpc_stats_of(rpc, rpc_code, interval=pb.HOUR)
            assert by_rpc["totals"] == {"clicks": 3, "uniques": 1, "bot_clicks": 0}
            assert by_rpc["top"]["referrer"] == [{"value": "news.example", "clicks": 3}]
            assert {**by_rpc, "code": rest_code} == by_rest
            # And each API reads the other's link's stats alike.
            assert await rpc_stats_of(rpc, rest_code, interval=pb.HOUR) == by_rest
