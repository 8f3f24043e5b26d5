"""A person's first run in a real browser: the setup link `kurz serve` printed, signing
in, changing the password on the account page, signing out and in again. Each page on
the way is checked (axe-core, a phone's width) and screenshotted."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser.support import ADMIN, Kurz, check_accessibility, check_page, sign_in, submit
from tests.integration.auth.people import PASSWORD

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = pytest.mark.asyncio(loop_scope="session")
NEW_PASSWORD = "a much longer passphrase now"


async def test_a_person_sets_up_kurz_signs_in_changes_the_password_and_signs_out(
    fresh_kurz: Kurz, page: Page
) -> None:
    from playwright.async_api import expect

    await page.goto(fresh_kurz.at("/"))
    assert page.url == fresh_kurz.at("/_/signin")
    await page.get_by_text("kurz is not set up yet").wait_for()

    await page.goto(fresh_kurz.setup_link())
    await check_page(page, "setup")
    await page.get_by_label("Email address").fill(ADMIN)
    await page.get_by_label("Name (optional)").fill("Ada")
    password = page.get_by_label("Password", exact=True)
    await expect(password).to_have_accessible_description("At least 8 characters.")
    await password.fill(PASSWORD)
    await page.get_by_label("Password again").fill(PASSWORD)
    made = await submit(page, "Create the admin")
    assert made.status == 200
    await page.get_by_text(f"The admin {ADMIN} is made").wait_for()
    await check_accessibility(page)

    await page.goto(fresh_kurz.at("/"))
    assert page.url == fresh_kurz.at("/_/signin")
    assert await page.get_by_text("kurz is not set up yet").count() == 0
    await check_page(page, "signin")
    await sign_in(page, fresh_kurz)
    await check_page(page, "dashboard")

    await page.get_by_role("link", name="Ada").click()
    await page.wait_for_url(fresh_kurz.at("/_/account"))
    await check_page(page, "account")
    await page.get_by_label("Current password").fill(PASSWORD)
    await page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await page.get_by_label("New password again").fill(NEW_PASSWORD)
    changed = await submit(page, "Change password")
    assert changed.status == 200
    assert page.url == fresh_kurz.at("/_/account?changed=1")
    await page.get_by_role("status").get_by_text("Your password is changed").wait_for()

    signed_out = await submit(page, "Sign out")
    assert signed_out.status == 200
    assert page.url == fresh_kurz.at("/_/signin?signed_out=1")
    await page.goto(fresh_kurz.at("/_/account"))
    assert page.url.startswith(fresh_kurz.at("/_/signin?next="))

    await page.get_by_label("Email address").fill(ADMIN)
    await page.get_by_label("Password").fill(PASSWORD)
    refused = await submit(page, "Sign in")
    assert refused.status == 401
    await page.get_by_role("alert").wait_for()
    await check_page(page, "signin-refused")

    await sign_in(page, fresh_kurz, ADMIN, NEW_PASSWORD)


async def test_the_account_page_shows_errors_beside_their_fields(kurz: Kurz, page: Page) -> None:
    await sign_in(page, kurz)
    await page.goto(kurz.at("/_/account"))
    await page.get_by_label("Current password").fill(PASSWORD)
    await page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await page.get_by_label("New password again").fill(NEW_PASSWORD + "!")
    refused = await submit(page, "Change password")
    assert refused.status == 422
    from playwright.async_api import expect

    # What a screen reader says of each field beside its name: its error, its hint.
    again = page.get_by_label("New password again")
    await expect(again).to_have_attribute("aria-invalid", "true")
    await expect(again).to_have_accessible_description("The two passwords differ.")
    new = page.get_by_label("New password", exact=True)
    await expect(new).to_have_accessible_description("At least 8 characters.")
    await check_page(page, "account-error")
