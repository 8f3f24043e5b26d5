"""The dashboard: the viewer's own links' clicks over 30 days, top links of all time and
recent links, and a welcome for a new user. On SQLite and PostgreSQL."""

from __future__ import annotations

import re

from fastapi import FastAPI

from kurz.db import Database
from tests.integration.analytics.rollups import Rollups, new_link
from tests.integration.web.charts_read import SVG, bars, card, chart
from tests.integration.web.people import assert_page, browser_of
from tests.support import FakeClock


def table(page: str, section: str) -> list[tuple[str, str]]:
    """A links table's rows: where the link goes in the app, and its last cell."""
    found = re.search(rf'aria-labelledby="{section}-heading">.*?</section>', page, re.S)
    assert found is not None, page
    return re.findall(
        r'<tr><th scope="row"><a href="([^"]*)">[^<]*</a></th><td class="url hide-narrow">'
        r"[^<]*</td><td[^>]*>([^<]*)</td></tr>",
        found.group(0),
    )


async def test_a_new_user_is_welcomed_with_a_first_link_button(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        page = assert_page(await ada.http.get("/_/dashboard"))
        assert '<a class="button" href="/_/new">Create your first link</a>' in page
        assert "<svg" not in page


async def test_the_dashboard_counts_only_the_viewers_own_links(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    clock.advance(12 * 3600)  # 2026-01-01 12:00 UTC: the last 30 days are Dec 3 to Jan 1
    async with (
        browser_of(app, db, clock, "ada@example.com") as ada,
        browser_of(app, db, clock, "bob@example.com") as bob,
        browser_of(app, db, clock, "root@example.com", role="admin") as root,
    ):
        spring = await new_link(db, clock, ada.user_id, "spring", title="Spring <sale>")
        fall = await new_link(db, clock, ada.user_id, "fall", url="https://fall.example/")
        await new_link(db, clock, ada.user_id, "quiet")
        bobs = await new_link(db, clock, bob.user_id, "bobs")
        roots = await new_link(db, clock, root.user_id, "roots")
        await (
            Rollups()
            .day(spring, "2025-12-31", 5, 4, bots=2)
            .day(spring, "2026-01-01", 2, 2)
            .day(fall, "2025-12-03", 3, 3)
            .day(fall, "2025-12-02", 900, 900)  # 31 days ago: not counted
            .day(bobs, "2025-12-31", 1_000, 1_000)
            .day(roots, "2025-12-31", 77, 70)
            .write(db)
        )

        page = assert_page(await ada.http.get("/_/dashboard"))
        assert card(page, "Links") == "3"
        assert card(page, "Clicks in 30 days") == "10"
        assert card(page, "Bots' clicks") == "2"
        assert bars(page) == 30
        assert chart(page).findtext(f"{SVG}title") == "Your links' clicks by day"
        # Of all time: the clicks before the 30 days count here.
        assert '<h2 id="top-heading">Top links (all time)</h2>' in page
        assert table(page, "top") == [("/_/links/fall", "903"), ("/_/links/spring", "7")]
        assert "Spring &lt;sale&gt;</a>" in page
        assert "kurz.test/fall</a>" in page
        assert [path for path, _ in table(page, "recent")] == [
            "/_/links/quiet", "/_/links/fall", "/_/links/spring",
        ]  # fmt: skip
        assert "bobs" not in page
        assert "roots" not in page
        assert "1,000" not in page

        # An admin's dashboard is their own links too.
        admin_page = assert_page(await root.http.get("/_/dashboard"))
        assert card(admin_page, "Clicks in 30 days") == "77"
        assert table(admin_page, "top") == [("/_/links/roots", "77")]
        assert "spring" not in admin_page
        assert "bobs" not in admin_page


async def test_links_without_clicks_say_so(app: FastAPI, db: Database, clock: FakeClock) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        await new_link(db, clock, ada.user_id, "fresh")
        page = assert_page(await ada.http.get("/_/dashboard"))
        assert card(page, "Clicks in 30 days") == "0"
        assert "None of your links has been clicked yet." in page
        assert "No clicks in this period" in page  # the empty chart
        assert [path for path, _ in table(page, "recent")] == ["/_/links/fresh"]
