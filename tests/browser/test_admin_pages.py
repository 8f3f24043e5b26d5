"""The admin pages in a real browser, each with something in it: a second user, a domain
added through its form, the jobs kurz queued. Each is checked (support.check_page:
axe-core, a phone's width) and screenshotted."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser.support import Kurz, check_page, sign_in, submit

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _open(page: Page, kurz: Kurz, link: str, path: str) -> None:
    """Follow the link named `link` on the admin index to `path`."""
    await page.goto(kurz.at("/_/admin"))
    await page.get_by_role("main").get_by_role("link", name=link).click()
    await page.wait_for_url(kurz.at(path))


async def test_the_admin_pages(kurz: Kurz, page: Page) -> None:
    from playwright.async_api import expect

    kurz.add_user("bob@example.com")
    await sign_in(page, kurz)
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    await page.wait_for_url(kurz.at("/_/admin"))
    await check_page(page, "admin")

    await _open(page, kurz, "Users", "/_/admin/users")
    await expect(page.get_by_role("row", name="bob@example.com")).to_contain_text("member")
    await check_page(page, "admin-users")

    await _open(page, kurz, "Domains", "/_/admin/domains")
    await page.get_by_label("Host").fill("go.example.com")
    assert (await submit(page, "Add the domain")).status == 200
    await page.get_by_role("row", name="go.example.com").wait_for()
    await check_page(page, "admin-domains")
    await page.get_by_role("link", name="Edit go.example.com").click()
    await page.wait_for_url(kurz.at("/_/admin/domains/go.example.com"))
    await check_page(page, "admin-domain")

    await _open(page, kurz, "Background jobs", "/_/admin/jobs")
    await check_page(page, "admin-jobs")

    await _open(page, kurz, "System", "/_/admin/system")
    await page.get_by_role("heading", name="Database").wait_for()
    await check_page(page, "admin-system")
