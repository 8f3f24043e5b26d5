"""kurz from the keyboard alone: signing in with Tab and Enter, the skip link, and a
visible focus outline on everything Tab reaches."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser.support import ADMIN, Kurz, sign_in
from tests.integration.auth.people import PASSWORD

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = pytest.mark.asyncio(loop_scope="session")

# What the focused element is and how its focus shows (kurz.css: :focus-visible).
FOCUSED = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  const box = el.getBoundingClientRect();
  return {
    id: el.id, tag: el.tagName.toLowerCase(), text: el.textContent.trim(),
    visible: el.matches(":focus-visible"),
    outline: `${style.outlineStyle} ${style.outlineWidth}`,
    onScreen: box.width > 0 && box.height > 0 && box.right > 0 && box.bottom > 0,
  };
}"""


async def _tab(page: Page) -> dict[str, object]:
    await page.keyboard.press("Tab")
    focused: dict[str, object] = await page.evaluate(FOCUSED)
    return focused


async def test_the_sign_in_form_works_with_tab_and_enter(site: Kurz, page: Page) -> None:
    await page.goto(site.at("/_/signin"))
    assert (await page.evaluate(FOCUSED))["id"] == "email"  # autofocus
    await page.keyboard.type(ADMIN)
    assert (await _tab(page))["id"] == "password"
    await page.keyboard.type(PASSWORD)
    async with page.expect_navigation(url=site.at("/_/dashboard")):
        await page.keyboard.press("Enter")
    await page.get_by_role("heading", name="Dashboard", level=1).wait_for()


async def test_tab_shows_where_the_focus_is_on_everything_it_reaches(
    site: Kurz, page: Page
) -> None:
    await sign_in(page, site)
    await page.goto(site.at("/_/account"))
    skip = await _tab(page)
    assert skip["text"] == "Skip to content"
    assert skip["onScreen"], "the skip link stays off screen when focused"
    reached = [skip]
    while len(reached) < 50:
        focused = await _tab(page)
        if focused["tag"] == "body" or focused == reached[0]:
            break
        reached.append(focused)
    texts = [str(focused["text"] or focused["id"]) for focused in reached]
    assert texts[:2] == ["Skip to content", "kurz"], texts
    assert {"Dashboard", "Sign out", "current_password", "Change password", "API"} <= set(texts), (
        texts
    )
    for focused in reached:
        assert focused["visible"], focused
        assert focused["outline"] == "solid 3px", focused


async def test_the_skip_link_takes_the_focus_to_the_page_itself(site: Kurz, page: Page) -> None:
    await sign_in(page, site)
    await page.goto(site.at("/_/account"))
    assert (await _tab(page))["text"] == "Skip to content"
    await page.keyboard.press("Enter")
    assert page.url == site.at("/_/account#main")
    assert (await _tab(page))["id"] == "current_password"
