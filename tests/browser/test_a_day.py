"""A person's day with kurz, in a real browser and in the order the issue walks it:
first-run setup, signing in, a link made with a tag and a visit cap, found again in the
list, its short URL opened and the click seen, its QR code downloaded and read back, an
edit that meets another session's change first, an API key made and revoked, signing
out. Every page on the way is checked (support.check_page) and screenshotted."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.browser.support import (
    ADMIN,
    Kurz,
    Target,
    check_page,
    sign_in,
    submit,
)
from tests.e2e.support import PATIENCE
from tests.integration.auth.people import PASSWORD
from tests.qrcodes import read_png

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Locator, Page

    from tests.browser.conftest import NewContext

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _set_up(page: Page, kurz: Kurz) -> None:
    """The first run, through the setup link `kurz serve` printed (test_first_run checks
    its pages)."""
    await page.goto(kurz.setup_link())
    await page.get_by_label("Email address").fill(ADMIN)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_label("Password again").fill(PASSWORD)
    assert (await submit(page, "Create the admin")).status == 200


async def _create(page: Page, kurz: Kurz, target: Target) -> tuple[str, str]:
    """A link made on /_/new with a tag and a visit cap: (its code, its short URL)."""
    from playwright.async_api import expect

    await page.get_by_role("navigation", name="Main").get_by_role("link", name="New link").click()
    await page.wait_for_url(kurz.at("/_/new"))
    await check_page(page, "link-new")
    await page.get_by_label("Target URL").fill(target.at("/spring-sale"))
    await page.get_by_label("Tags").fill("spring, newsletter")
    await page.get_by_text("Schedule and limits").click()
    await page.get_by_label("Visit cap").fill("5")
    made = await submit(page, "Create link")
    assert made.status == 200
    found = re.fullmatch(re.escape(kurz.at("/_/links/")) + r"([\w-]+)\?created=1", page.url)
    assert found, page.url
    code = found.group(1)
    short = kurz.at(f"/{code}")
    await expect(page.locator("#short-url")).to_have_text(short)
    await page.get_by_role("status").get_by_text("The link is made").wait_for()
    await expect(_fact(page, "Visits")).to_have_text("0 of 5 used")
    await expect(_fact(page, "Tags").get_by_role("link")).to_have_text(["newsletter", "spring"])
    await check_page(page, "link")
    return code, short


def _fact(page: Page, name: str) -> Locator:
    """The value beside `name` in the link page's details."""
    return page.get_by_role("row", name=re.compile(f"^{name} ")).get_by_role("cell")


async def _find_by_search(page: Page, code: str) -> None:
    """Type in the search field: htmx replaces the results in place as one types."""
    from playwright.async_api import expect

    await page.evaluate("() => { window.sameDocument = true; }")
    await page.get_by_role("searchbox", name="Search").fill("spring")
    rows = page.locator("#results table.links tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows).to_contain_text(code)
    await expect(page).to_have_url(re.compile(r"[?&]q=spring(&|$)"))
    assert await page.evaluate("() => window.sameDocument === true"), "the page was reloaded"


async def _wait_for_the_click(page: Page, kurz: Kurz, code: str) -> None:
    """Until the stats API counts the link's click by a person: kurz records clicks in
    batches after the redirect, so this waits on the count (PATIENCE only turns a hang
    into a failure)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE
    while True:
        answer = await page.request.get(kurz.at(f"/api/v1/links/{code}/stats"))
        assert answer.status == 200, await answer.text()
        totals = (await answer.json())["totals"]
        if totals["clicks"] >= 1:
            assert totals == {"clicks": 1, "uniques": 1, "bot_clicks": 0}
            return
        assert loop.time() < deadline, f"no click counted within {PATIENCE:g} s: {totals}"
        await asyncio.sleep(0.05)


async def _stats_page(page: Page, kurz: Kurz, code: str) -> None:
    """See the click on the link's stats page."""
    from playwright.async_api import expect

    shown = await page.goto(kurz.at(f"/_/links/{code}/stats"))
    assert shown is not None
    assert shown.status == 200
    people = page.locator(".card").filter(has_text="People's clicks").locator(".big")
    await expect(people).to_have_text("1")
    await check_page(page, "link-stats")


async def _edit_after_another_session(
    page: Page, kurz: Kurz, code: str, new_context: NewContext
) -> None:
    """Edit the title while the same person, signed in elsewhere, changed it first: the
    conflict view shows both, and "Keep mine" saves this one."""
    from playwright.async_api import expect

    await page.goto(kurz.at(f"/_/links/{code}"))
    await page.get_by_role("link", name="Edit", exact=True).click()
    await page.wait_for_url(kurz.at(f"/_/links/{code}/edit"))
    await check_page(page, "link-edit")

    elsewhere = await (await new_context()).new_page()
    await sign_in(elsewhere, kurz)
    await elsewhere.goto(kurz.at(f"/_/links/{code}/edit"))
    await elsewhere.get_by_text("Link preview").click()
    await elsewhere.get_by_label("Title").fill("Spring sale (their words)")
    assert (await submit(elsewhere, "Save changes")).status == 200
    await elsewhere.get_by_text("Your changes are saved.").wait_for()

    await page.get_by_text("Link preview").click()
    await page.get_by_label("Title").fill("Spring sale")
    conflict = await submit(page, "Save changes")
    assert conflict.status == 412  # If-Match failed
    await page.get_by_role("alert").get_by_text("Someone changed this link").wait_for()
    table = page.get_by_role("table")
    await expect(table.get_by_role("columnheader")).to_have_text(
        ["Field", "Your version", "Saved now (changed by someone else)"]
    )
    title = table.get_by_role("row", name=re.compile(r"^Preview title changed"))
    await expect(title.get_by_role("cell")).to_have_text(
        ["Spring sale", "Spring sale (their words)"]
    )
    await check_page(page, "link-conflict")

    assert (await submit(page, "Keep mine")).status == 200
    assert page.url.startswith(kurz.at(f"/_/links/{code}")), page.url
    await page.get_by_text("Your changes are saved.").wait_for()
    await expect(_fact(page, "Title")).to_have_text("Spring sale")


async def _make_and_revoke_a_key(page: Page, kurz: Kurz) -> None:
    """An API key made on /_/keys, its secret shown once and working, then revoked after
    its confirmation page: the API refuses it from then on."""
    from playwright.async_api import expect

    await page.get_by_role("navigation", name="Main").get_by_role("link", name="API keys").click()
    await page.wait_for_url(kurz.at("/_/keys"))
    await check_page(page, "keys")
    await page.get_by_label("Name").fill("Newsletter script")
    assert (await submit(page, "Create key")).status == 201
    secret = await page.get_by_label("Secret").input_value()
    assert secret
    await page.get_by_text("it will not be shown again").first.wait_for()
    await check_page(page, "key-created")

    # Not page.request: it would send the session cookie along with the key.
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {secret}"}) as api:
        assert (await api.get(kurz.at("/api/v1/links"))).status_code == 200

        # The page is already at /_/keys (the form posted there): wait for the
        # navigation the link starts, not for a URL that matches already.
        async with page.expect_navigation(url=kurz.at("/_/keys")):
            await page.get_by_role("link", name="Back to your keys").click()
        await page.get_by_role("heading", name="Your keys").wait_for()
        assert secret not in await page.content()
        await page.get_by_role("link", name="Revoke Newsletter script").click()
        await page.get_by_role("button", name="Revoke the key").wait_for()
        await check_page(page, "key-revoke")
        assert (await submit(page, "Revoke the key")).status == 200
        row = page.get_by_role("row", name=re.compile(r"^Newsletter script"))
        await expect(row).to_contain_text("revoked")
        await expect(row.get_by_role("link", name=re.compile("^Revoke"))).to_have_count(0)

        refused = await api.get(kurz.at("/api/v1/links"))
        assert refused.status_code == 401, refused.text


async def test_a_day_with_kurz(
    fresh_kurz: Kurz, target: Target, context: BrowserContext, new_context: NewContext
) -> None:
    from playwright.async_api import expect

    kurz = fresh_kurz
    page = await context.new_page()
    await _set_up(page, kurz)
    await sign_in(page, kurz)
    # Two more links, so that finding the day's link means something.
    key = kurz.api_key(name="others")
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as api:
        for url in ("https://example.com/autumn", "https://example.com/winter"):
            made = await api.post(kurz.at("/api/v1/links"), json={"url": url, "tags": ["news"]})
            assert made.status_code == 201, made.text

    code, short = await _create(page, kurz, target)

    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Links").click()
    await page.wait_for_url(kurz.at("/_/links"))
    await expect(page.locator("table.links tbody tr")).to_have_count(3)
    await check_page(page, "links")
    await _find_by_search(page, code)
    await check_page(page, "links-search")

    # The short URL in another tab of the same browser: kurz sends it on to the target.
    visitor = await context.new_page()
    await visitor.goto(short)
    assert visitor.url == target.at("/spring-sale")
    await visitor.get_by_role("heading", name="Landed").wait_for()
    await visitor.close()
    assert target.visited[0] == "/spring-sale"

    await page.goto(kurz.at(f"/_/links/{code}"))
    await expect(_fact(page, "Visits")).to_have_text("1 of 5 used")
    await _wait_for_the_click(page, kurz, code)
    await _stats_page(page, kurz, code)
    # The dashboard now has a link with a click: its chart and tables, checked too.
    await page.goto(kurz.at("/_/dashboard"))
    await expect(page.get_by_role("heading", name="Top links")).to_be_visible()
    await check_page(page, "dashboard-in-use")

    await page.goto(kurz.at(f"/_/links/{code}"))
    async with page.expect_download() as downloading:
        await page.get_by_role("link", name="Download PNG").click()
    download = await downloading.value
    assert download.suggested_filename == f"{code}.png"
    qr = read_png((await download.path()).read_bytes())
    assert qr.text == short

    await _edit_after_another_session(page, kurz, code, new_context)

    await page.get_by_role("link", name="Delete", exact=True).click()
    await page.wait_for_url(kurz.at(f"/_/links/{code}/delete"))
    await check_page(page, "link-delete")
    await page.get_by_role("link", name="Cancel").click()
    await page.wait_for_url(kurz.at(f"/_/links/{code}"))

    await _make_and_revoke_a_key(page, kurz)

    assert (await submit(page, "Sign out")).status == 200
    assert page.url == kurz.at("/_/signin?signed_out=1")
    await page.goto(kurz.at("/_/links"))
    assert page.url.startswith(kurz.at("/_/signin?next="))
