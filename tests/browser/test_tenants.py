"""People's links kept apart, in a real browser: a member invited through the admin
pages never sees an admin's link, neither listed nor by its address (a 404 page, as for
a link that does not exist: never a 403 that would say it does)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from tests.browser.support import Kurz, check_accessibility, check_page, sign_in, submit
from tests.integration.auth.people import PASSWORD

if TYPE_CHECKING:
    from playwright.async_api import Page

    from tests.browser.conftest import NewContext

pytestmark = pytest.mark.asyncio(loop_scope="session")
MEMBER = "bob@example.com"


async def _invite(page: Page, kurz: Kurz, email: str) -> str:
    """The invitation link an admin makes on /_/admin/users for a member."""
    await page.goto(kurz.at("/_/admin/users"))
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Role").select_option("member")
    assert (await submit(page, "Make an invitation link")).status == 201
    invitation = await page.get_by_label("Invitation link").input_value()
    assert invitation.startswith(kurz.at("/_/invite/")), invitation
    await check_page(page, "admin-invitation")
    return invitation


async def _join(page: Page, invitation: str) -> None:
    """Accept an invitation as the invited person does: choose a password."""
    await page.goto(invitation)
    await check_page(page, "invite")
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_label("Password again").fill(PASSWORD)
    assert (await submit(page, "Create my account")).status == 200
    await page.get_by_role("heading", name="Welcome to kurz").wait_for()


async def test_a_member_never_sees_an_admins_link(
    kurz: Kurz, page: Page, new_context: NewContext
) -> None:
    from playwright.async_api import expect

    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {kurz.api_key()}"}) as api:
        made = await api.post(
            kurz.at("/api/v1/links"), json={"url": "https://example.com/admins-only"}
        )
    assert made.status_code == 201, made.text
    code = made.json()["code"]
    await sign_in(page, kurz)
    invitation = await _invite(page, kurz, MEMBER)

    bob = await (await new_context()).new_page()
    await _join(bob, invitation)
    await sign_in(bob, kurz, MEMBER)
    await bob.goto(kurz.at("/_/links"))
    await bob.get_by_text("You have no links yet.").wait_for()
    assert code not in await bob.content()
    for path in ("", "/edit", "/delete"):
        shown = await bob.goto(kurz.at(f"/_/links/{code}{path}"))
        assert shown is not None
        assert shown.status == 404, path
        await expect(bob.get_by_role("main")).not_to_contain_text("admins-only")
    await check_accessibility(bob)
    qr = await bob.request.get(kurz.at(f"/api/v1/links/{code}/qr?format=png"))
    assert qr.status == 404

    # The admin sees it, and still does: nothing bob did reached it.
    await page.goto(kurz.at(f"/_/links/{code}"))
    await page.get_by_text("https://example.com/admins-only").wait_for()
