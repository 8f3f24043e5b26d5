"""Links belong to users, not to the keys that made them (ADR 0016): every key of a user
sees the user's links, and a key of another user sees none of them (404, never 403)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from kurz.db import Database
from tests.integration.auth.support import member, new_key
from tests.integration.links.support import create
from tests.support import FakeClock


async def test_a_users_keys_share_its_links_and_no_other_user_sees_them(
    db: Database, clock: FakeClock, client_for: Callable[[str], httpx.AsyncClient]
) -> None:
    laptop_key = await member(db, clock, "ann@example.com")
    ci_key = await new_key(db, clock, laptop_key.user_id, name="ci")
    stranger = await member(db, clock, "bob@example.com")
    async with (
        client_for(laptop_key.secret) as laptop,
        client_for(ci_key.secret) as ci,
        client_for(stranger.secret) as bob,
    ):
        code = (await create(laptop))["code"]
        assert (await ci.get(f"/api/v1/links/{code}")).status_code == 200
        listed = (await ci.get("/api/v1/links")).json()["items"]
        assert [link["code"] for link in listed] == [code]
        assert (await bob.get(f"/api/v1/links/{code}")).status_code == 404
        assert (await bob.get("/api/v1/links")).json()["items"] == []
        assert (await bob.delete(f"/api/v1/links/{code}")).status_code == 404
