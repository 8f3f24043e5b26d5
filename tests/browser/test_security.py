"""What a browser enforces for kurz: a form posted without its CSRF token changes
nothing; and the watch every browser test runs under (tests/browser/conftest.py) does
see a CSP violation and a request to another origin, so its silence means something."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser.support import ADMIN, Kurz, Watch, sign_in, submit
from tests.integration.auth.people import PASSWORD

if TYPE_CHECKING:
    from playwright.async_api import Page

    from tests.browser.conftest import NewContext

pytestmark = pytest.mark.asyncio(loop_scope="session")
NEW_PASSWORD = "a much longer passphrase now"


async def _without_token(page: Page, form: str) -> None:
    """Take the CSRF token out of the page's `form` (a selector), as a forged form on
    another site would lack it."""
    removed = await page.evaluate(
        """(form) => {
          const token = document.querySelector(`${form} input[name="csrf_token"]`);
          token.remove();
          return token.value.length;
        }""",
        form,
    )
    assert removed > 0


async def test_a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing(
    kurz: Kurz, page: Page, new_context: NewContext
) -> None:
    await sign_in(page, kurz)
    await page.goto(kurz.at("/_/account"))
    await _without_token(page, 'main form[action="/_/account"]')
    await page.get_by_label("Current password").fill(PASSWORD)
    await page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await page.get_by_label("New password again").fill(NEW_PASSWORD)
    refused = await submit(page, "Change password")
    assert refused.status == 403
    await page.get_by_role("alert").wait_for()
    await page.get_by_text("Reload the page and try again").wait_for()

    await page.goto(kurz.at("/_/account"))
    await _without_token(page, 'form[action="/_/signout"]')
    still = await submit(page, "Sign out")
    assert still.status == 403
    await page.goto(kurz.at("/_/account"))
    assert page.url == kurz.at("/_/account"), "a sign-out without its token signed out"

    # The password is the one it was: a second person signs in with it, not the new one.
    other = await (await new_context()).new_page()
    await other.goto(kurz.at("/_/signin"))
    await other.get_by_label("Email address").fill(ADMIN)
    await other.get_by_label("Password").fill(NEW_PASSWORD)
    assert (await submit(other, "Sign in")).status == 401
    await sign_in(other, kurz, ADMIN, PASSWORD)


async def test_the_watch_sees_an_inline_script_the_csp_blocks(
    site: Kurz, page: Page, watch: Watch
) -> None:
    await page.goto(site.at("/_/signin"))
    await page.evaluate(
        """() => { window.blocked = new Promise((resolve) =>
          document.addEventListener("securitypolicyviolation", resolve, {once: true})); }"""
    )
    with pytest.raises(Exception, match="Content Security Policy"):
        await page.add_script_tag(content="window.ranInline = true;")
    # The watch's listener reported the violation before this one heard of it, and
    # reports arrive in order: once "probe" is in, the violation is too.
    await page.evaluate(
        "async () => { await window.blocked; await window.kurzCspViolation('probe'); }"
    )
    assert await page.evaluate("() => window.ranInline === undefined")
    assert watch.csp[-1] == "probe"
    assert any("script-src" in report for report in watch.csp[:-1]), watch.csp
    watch.csp.clear()  # seen: the test is done with them


async def test_the_watch_refuses_a_request_to_another_origin(
    site: Kurz, page: Page, watch: Watch
) -> None:
    await page.goto(site.at("/_/signin"))
    elsewhere = "http://192.0.2.1/never"  # TEST-NET-1: nothing answers there anyway
    with pytest.raises(Exception, match="ERR_BLOCKED_BY_CLIENT"):
        await page.goto(elsewhere)
    assert watch.foreign == [elsewhere]
    watch.foreign.clear()  # seen: the test is done with it


async def test_a_member_is_not_offered_the_admin_pages(kurz: Kurz, page: Page) -> None:
    kurz.add_user("bob@example.com")
    await sign_in(page, kurz, "bob@example.com", PASSWORD)
    menu = page.get_by_role("navigation", name="Main")
    await menu.get_by_role("link", name="Dashboard").wait_for()
    assert await menu.get_by_role("link", name="Admin").count() == 0
    # The API key a test makes acts for its user: bob's sees bob's links, none yet.
    key = kurz.api_key("bob@example.com")
    listed = await page.request.get(
        kurz.at("/api/v1/links"), headers={"Authorization": f"Bearer {key}"}
    )
    assert listed.status == 200
    assert (await listed.json())["items"] == []
