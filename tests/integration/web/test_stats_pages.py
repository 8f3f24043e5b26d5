"""A link's stats page: clicks by day and by hour, people apart from bots, the top values
with their shares, and refusals as pages. On SQLite and PostgreSQL."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI

from kurz.config import Settings
from kurz.db import Database
from tests.conftest import app_settings
from tests.integration.analytics.rollups import Rollups, new_domain, new_link
from tests.integration.auth.people import client
from tests.integration.web.charts_read import SVG, bars, card, chart
from tests.integration.web.people import assert_page, browser_of
from tests.support import FakeClock, record_queued_clicks

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
HALF_DAY = 12.5 * 3600


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Clicks recorded as kurz serve records them (the drainer runs)."""
    return app_settings(database_url, analytics=True)


def rows(page: str, section: str) -> list[tuple[str, str, str]]:
    """A breakdown's rows: value, clicks and share."""
    found = re.search(
        rf'<section class="breakdown" aria-labelledby="{section}-heading">.*?</section>', page, re.S
    )
    assert found is not None, page
    return [
        (value, clicks, share)
        for value, clicks, share in re.findall(
            r'<tr><td class="url">([^<]*)</td><td class="num">([^<]*)</td>'
            r'<td class="num share"><span class="hide-narrow"><svg.*?</svg></span> '
            r"([^<]*)</td></tr>",
            found.group(0),
        )
    ]


async def test_the_page_shows_the_clicks_by_day_and_by_hour(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    clock.advance(HALF_DAY)  # 2026-01-01 12:30 UTC
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        promo = await new_link(db, clock, ada.user_id, "promo", title="Spring <sale> & more")
        await (
            Rollups()
            .day(promo, "2025-12-20", 500, 400)  # before the last 7 days
            .day(promo, "2025-12-30", 6, 5, bots=2)
            .day(promo, "2026-01-01", 4, 3, bots=1)
            .hour(promo, "2026-01-01 09:00", 3, 2, bots=1)
            .hour(promo, "2026-01-01 11:00", 1, 1)
            .value(promo, "2025-12-30", "referrer", "news.example", 6)
            .value(promo, "2026-01-01", "referrer", "<script>alert(1)</script>&co", 3)
            .value(promo, "2026-01-01", "referrer", "(direct)", 1)
            .value(promo, "2025-12-30", "country", "DE", 6)
            .value(promo, "2026-01-01", "city", "Paris, FR", 4)
            .value(promo, "2025-12-30", "bot", "Googlebot", 2)
            .value(promo, "2026-01-01", "bot", "bingbot", 1)
            .value(promo, "2026-01-01", "variant", "https://b.example/?a&b", 4)
            .write(db)
        )

        page = assert_page(await ada.http.get("/_/links/promo/stats?days=7"))
        assert "<h1>Spring &lt;sale&gt; &amp; more</h1>" in page
        assert '<a href="/_/links/promo">Back to the link</a>' in page
        assert "<script>alert" not in page
        assert bars(page) == 7
        assert card(page, "People's clicks") == "10"
        assert card(page, "Bots' clicks") == "3"
        assert card(page, "Unique visitors") == "8"
        assert "77% of all clicks" in page
        assert "23% of all clicks" in page
        assert rows(page, "referrer") == [
            ("news.example", "6", "60%"),
            ("&lt;script&gt;alert(1)&lt;/script&gt;&amp;co", "3", "30%"),
            ("(direct)", "1", "10%"),
        ]
        assert rows(page, "country") == [("DE", "6", "60%")]
        assert rows(page, "city") == [("Paris, FR", "4", "40%")]
        # Bots' shares are of bots' clicks.
        assert rows(page, "bot") == [("Googlebot", "2", "67%"), ("bingbot", "1", "33%")]
        assert "None in this period." in page  # devices, browsers, OS
        # A variants table once a variant had clicks.
        assert rows(page, "variant") == [("https://b.example/?a&amp;b", "4", "40%")]
        day = '<tr><th scope="row">Dec 30, 2025</th><td class="num">6</td><td class="num">5</td>'
        assert day + '<td class="num">2</td></tr>' in page
        assert '<a href="/_/links/promo/stats?by=day&amp;days=7" aria-current="true">' in page

        hourly = assert_page(await ada.http.get("/_/links/promo/stats?by=hour&days=1"))
        # Today's hours up to this one: 00:00 to 12:00.
        assert bars(hourly) == 13
        assert card(hourly, "People's clicks") == "4"
        assert card(hourly, "Bots' clicks") == "1"
        assert "Jan 1, 2026 09:00 UTC" in hourly
        assert chart(hourly).findtext(f"{SVG}desc") == (
            "Clicks per hour from Jan 1, 2026 00:00 UTC to Jan 1, 2026 12:00 UTC: 4 in all; "
            "the most, 3, at Jan 1, 2026 09:00 UTC."
        )
        assert rows(hourly, "referrer")[0] == (
            "&lt;script&gt;alert(1)&lt;/script&gt;&amp;co", "3", "75%",
        )  # fmt: skip

        # Dates, both included; and the longest hourly range makes a line.
        dated = assert_page(
            await ada.http.get("/_/links/promo/stats?by=day&from=2025-12-20&to=2025-12-30")
        )
        assert bars(dated) == 11
        assert card(dated, "People's clicks") == "506"
        month = assert_page(await ada.http.get("/_/links/promo/stats?by=hour&days=30"))
        assert len(chart(month).findall(f"{SVG}polyline")) == 1


async def test_clicks_through_the_redirect_show_with_bots_apart(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada, client(app) as anon:
        await new_link(db, clock, ada.user_id, "real", url="https://target.example/")
        person = {"User-Agent": FIREFOX, "Referer": "https://www.news.example/post"}
        for headers in (person, person, {"User-Agent": GOOGLEBOT}):
            assert (await anon.get("/real", headers=headers)).status_code == 302
        await record_queued_clicks(app.state.kurz.analytics)

        page = assert_page(await ada.http.get("/_/links/real/stats"))
        assert card(page, "People's clicks") == "2"
        assert card(page, "Unique visitors") == "1"
        assert card(page, "Bots' clicks") == "1"
        assert rows(page, "referrer") == [("news.example", "2", "100%")]
        assert rows(page, "browser") == [("Firefox", "2", "100%")]
        assert rows(page, "bot") == [("Googlebot", "1", "100%")]
        assert bars(page) == 30
        # A link without variants has no table of them.
        assert 'aria-labelledby="variant-heading"' not in page


async def test_another_members_link_is_a_404_page(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with (
        browser_of(app, db, clock, "ada@example.com") as ada,
        browser_of(app, db, clock, "bob@example.com") as bob,
        browser_of(app, db, clock, "root@example.com", role="admin") as root,
    ):
        secret = await new_link(db, clock, bob.user_id, "bobs")
        await Rollups().day(secret, "2025-12-31", 4243, 40).write(db)
        for path in ("/_/links/bobs/stats", "/_/links/nothing/stats"):
            page = assert_page(await ada.http.get(path), 404)
            # Nothing of the link: neither its clicks nor the cards that would show them
            # (a bare number could be part of an asset's hashed name).
            assert "4,243" not in page
            assert "4243" not in page
            assert "People&#39;s clicks" not in page
            assert "People's clicks" not in page
        assert_page(await bob.http.get("/_/links/bobs/stats"))
        # An admin sees every link, as the API lets them.
        assert (
            card(assert_page(await root.http.get("/_/links/bobs/stats")), "People's clicks")
            == "4,243"
        )


async def test_a_link_on_another_domain_is_named_by_its_domain(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    branded = await new_domain(db, clock, "go.example")
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        link = await new_link(db, clock, ada.user_id, "promo", domain_id=branded)
        await Rollups().day(link, "2025-12-31", 7, 7).write(db)
        assert_page(await ada.http.get("/_/links/promo/stats"), 404)
        page = assert_page(await ada.http.get("/_/links/promo/stats?domain=go.example"))
        assert card(page, "People's clicks") == "7"
        assert "<h1>https://go.example/promo</h1>" in page
        assert '<a href="/_/links/promo?domain=go.example">Back to the link</a>' in page
        assert 'href="/_/links/promo/stats?by=hour&amp;days=30&amp;domain=go.example"' in page
        assert '<input type="hidden" name="domain" value="go.example">' in page


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("by=week", 400),
        ("days=0", 400),
        ("days=abc", 400),
        ("days=5000", 400),
        ("by=hour&days=90", 400),
        ("from=yesterday", 400),
        ("from=2025-12-31&to=2025-12-01", 400),
        ("by=hour&from=2025-01-01&to=2025-12-31", 400),
        ("from=0001-01-01&to=9999-12-31", 400),
        ("from=9999-12-30", 400),
        ("to=9999-12-31", 400),
        ("from=2026-01-01T00:00:00Z", 400),
        ("domain=" + "x" * 400, 400),
        ("domain=nope.example", 404),
        ("domain=-bad-", 404),
    ],
)
async def test_a_nonsense_query_is_a_page_never_a_500(
    app: FastAPI, db: Database, clock: FakeClock, query: str, status: int
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        await new_link(db, clock, ada.user_id, "promo")
        assert_page(await ada.http.get(f"/_/links/promo/stats?{query}"), status)


async def test_a_malformed_code_is_a_page(app: FastAPI, db: Database, clock: FakeClock) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        for code in ("x" * 200, "a%20b", "%00"):
            response = await ada.http.get(f"/_/links/{code}/stats")
            assert 400 <= response.status_code < 500
            assert_page(response, response.status_code)


async def test_signing_in_comes_first(app: FastAPI) -> None:
    async with client(app) as anon:
        response: httpx.Response = await anon.get("/_/links/promo/stats?days=7")
        assert response.status_code == 303
        assert response.headers["location"] == "/_/signin?next=/_/links/promo/stats%3Fdays%3D7"
