"""Where visitors are: a click's country comes from the data shipped with kurz, or its
country and city from a MaxMind DB file (KURZ_GEOIP_DB), for the address the redirect
path believes (a trusted proxy's X-Forwarded-For included), or from a trusted proxy's
country header (KURZ_GEOIP_HEADER), never from anyone else's. kurz stores no address.
On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from kurz.config import Settings
from kurz.geo import MaxMindLocator
from tests.conftest import BASE_URL
from tests.integration.auth.support import member
from tests.integration.links.support import create
from tests.support import FakeClock, mmdb, record_queued_clicks, running

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15"
)


def visitor(app: Any, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40_000))
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


async def top(
    app: Any, api: httpx.AsyncClient, clock: FakeClock, code: str
) -> dict[str, dict[str, int]]:
    await record_queued_clicks(app.state.kurz.analytics)
    clock.advance(86_400)
    response = await api.get(f"/api/v1/links/{code}/stats", params={"interval": "day"})
    assert response.status_code == 200, response.text
    found = response.json()["top"]
    return {
        dimension: {row["value"]: row["clicks"] for row in found[dimension]}
        for dimension in ("country", "city")
    }


async def countries(
    app: Any, api: httpx.AsyncClient, clock: FakeClock, code: str
) -> dict[str, int]:
    return (await top(app, api, clock, code))["country"]


async def test_a_clicks_country_is_where_its_visitor_is(
    settings: Settings, clock: FakeClock
) -> None:
    update = {
        "analytics": True,
        "trusted_proxies": "192.0.2.10/32",
        "geoip_header": "CF-IPCountry",
        "ratelimit_redirect": "off",
    }
    async with running(Settings.model_validate({**settings.model_dump(), **update}), clock) as app:
        owner = await member(app.state.kurz.db, clock, "owner@example.com")
        api = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=BASE_URL,
            headers={"Authorization": f"Bearer {owner.secret}"},
        )
        code = (await create(api))["code"]
        path = f"/{code}"
        async with (
            visitor(app, "81.2.69.142") as british,
            visitor(app, "192.0.2.10") as proxy,
            visitor(app, "203.0.113.5") as stranger,
        ):
            # Straight from a British address.
            assert (await british.get(path, headers={"User-Agent": FIREFOX})).status_code == 302
            # Through the trusted proxy, for an American address.
            forwarded = {"User-Agent": FIREFOX, "X-Forwarded-For": "8.8.8.8"}
            assert (await proxy.get(path, headers=forwarded)).status_code == 302
            # The trusted proxy says where its visitor is: believed over the data.
            told = {"User-Agent": SAFARI, "X-Forwarded-For": "8.8.8.8", "CF-IPCountry": "DE"}
            assert (await proxy.get(path, headers=told)).status_code == 302
            # Anyone else saying so is not believed (and 203.0.113.5 is nowhere).
            lying = {"User-Agent": FIREFOX, "CF-IPCountry": "FR"}
            assert (await stranger.get(path, headers=lying)).status_code == 302
        assert await countries(app, api, clock, code) == {
            "GB": 1,
            "US": 1,
            "DE": 1,
            "(unknown)": 1,
        }
        await api.aclose()


async def test_with_the_data_off_no_country_is_known(settings: Settings, clock: FakeClock) -> None:
    update = {"analytics": True, "geoip": "off"}
    async with running(settings.model_copy(update=update), clock) as app:
        owner = await member(app.state.kurz.db, clock, "owner@example.com")
        api = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=BASE_URL,
            headers={"Authorization": f"Bearer {owner.secret}"},
        )
        code = (await create(api))["code"]
        async with visitor(app, "81.2.69.142") as british:
            response = await british.get(f"/{code}", headers={"User-Agent": FIREFOX})
            assert response.status_code == 302
        assert await countries(app, api, clock, code) == {"(unknown)": 1}
        await api.aclose()


async def test_a_maxmind_file_gives_clicks_their_country_and_city(
    settings: Settings, clock: FakeClock, tmp_path: Path
) -> None:
    places = mmdb(
        tmp_path / "city.mmdb",
        {"81.2.69.0/24": ("GB", "London"), "81.2.70.0/24": ("GB", None),
         "2a02:cf40::/29": ("DE", "Berlin")},
    )  # fmt: skip
    update = {
        "analytics": True,
        "geoip_db": str(places),
        "trusted_proxies": "192.0.2.10/32",
        "geoip_header": "CF-IPCountry",
        "ratelimit_redirect": "off",
    }
    async with running(Settings.model_validate({**settings.model_dump(), **update}), clock) as app:
        assert isinstance(app.state.kurz.locator, MaxMindLocator)
        owner = await member(app.state.kurz.db, clock, "owner@example.com")
        api = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=BASE_URL,
            headers={"Authorization": f"Bearer {owner.secret}"},
        )
        code = (await create(api))["code"]
        path = f"/{code}"
        async with (
            visitor(app, "81.2.69.142") as londoner,
            visitor(app, "2a02:cf40::7") as berliner,
            visitor(app, "81.2.70.9") as somewhere_british,
            visitor(app, "192.0.2.10") as proxy,
        ):
            for client in (londoner, berliner, somewhere_british):
                assert (await client.get(path, headers={"User-Agent": FIREFOX})).status_code == 302
            # Through the trusted proxy, for a Berliner on IPv6, then the same address
            # said by the proxy to be in France: a country, and no city of another.
            forwarded = {"User-Agent": SAFARI, "X-Forwarded-For": "2a02:cf40::8"}
            assert (await proxy.get(path, headers=forwarded)).status_code == 302
            told = {"User-Agent": FIREFOX, "X-Forwarded-For": "2a02:cf40::9", "CF-IPCountry": "FR"}
            assert (await proxy.get(path, headers=told)).status_code == 302
        assert await top(app, api, clock, code) == {
            "country": {"GB": 2, "DE": 2, "FR": 1},
            "city": {"Berlin, DE": 2, "London, GB": 1},
        }
        await api.aclose()
