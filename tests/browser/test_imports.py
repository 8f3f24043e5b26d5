"""An import in a real browser: a CSV file chosen on the imports page, uploaded, and
followed on the import's page (htmx asks for its progress every 2 s and shows the whole
page again once it has ended) until its report is there, failures first. kurz serve's
own worker runs it, as it runs any job. Each page is checked (support.check_page) and
screenshotted."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser.support import Kurz, check_page, sign_in, submit
from tests.e2e.support import PATIENCE

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = pytest.mark.asyncio(loop_scope="session")

CSV = (
    "url,alias,title\n"
    "https://example.com/spring,spring-sale,Spring\n"
    "not a web address,broken,Broken\n"
    "https://example.com/summer,,Summer\n"
)


async def test_a_csv_uploaded_is_followed_to_its_report(
    kurz: Kurz, page: Page, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    links = tmp_path / "links.csv"
    links.write_text(CSV)
    await sign_in(page, kurz)
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Imports").click()
    await page.wait_for_url(kurz.at("/_/imports"))
    await check_page(page, "imports")

    await page.get_by_label("Import from").select_option(label="CSV file")
    await page.get_by_role("button", name="Next").click()
    await page.wait_for_url(kurz.at("/_/imports/new?source=csv"))
    await check_page(page, "import-new")
    await page.get_by_label("File").set_input_files(links)
    await page.get_by_label("Rename it").check()
    started = await submit(page, "Start the import")
    assert started.status == 200
    assert re.fullmatch(re.escape(kurz.at("/_/imports/")) + r"\d+", page.url), page.url

    # The worker runs it in its own time; the page reloads itself once it has ended.
    # (PATIENCE only turns a hang into a failure.)
    await expect(page.get_by_text(re.compile(r"^Finished"))).to_be_visible(timeout=PATIENCE * 1000)
    progress = page.locator("#import-progress")
    await expect(progress).not_to_have_attribute("hx-trigger", re.compile("every"))
    await expect(progress.locator(".card", has_text="imported")).to_contain_text("2")
    await expect(progress.locator(".card", has_text="failed")).to_contain_text("1")
    rows = page.get_by_role("table").locator("tbody tr")
    await expect(rows).to_have_count(3)
    # Failures first, then the rest in the order read.
    await expect(rows.nth(0)).to_contain_text("failed")
    await expect(rows.nth(1)).to_contain_text("spring-sale")
    await expect(rows.nth(2)).to_contain_text("imported")
    await check_page(page, "import")

    await page.get_by_role("link", name="Failed").click()
    await expect(rows).to_have_count(1)
    await expect(page.get_by_role("link", name="Failed")).to_have_attribute("aria-current", "page")
