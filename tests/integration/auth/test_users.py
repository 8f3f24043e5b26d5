"""Links belong to users, not to the keys that made them (ADR 0016): every key of a user
sees the user's links, and a key of another user sees none of them (404, never 403)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import sqlalchemy as sa

from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import api_keys
from tests.conftest import KeyMaker
from tests.integration.links.support import create


async def test_a_users_keys_share_its_links_and_no_other_user_sees_them(
    db: Database, make_key: KeyMaker, client_for: Callable[[str], httpx.AsyncClient]
) -> None:
    first, second, stranger = [await make_key(name) for name in ("laptop", "ci", "bob")]
    async with client_for(first) as laptop, client_for(second) as ci, client_for(stranger) as bob:
        code = (await create(laptop))["code"]
        # Until keys are made for users over the API, give "ci" the user of "laptop".
        async with db.write(READ_COMMITTED) as conn:
            owner = sa.select(api_keys.c.user_id).where(api_keys.c.name == "laptop")
            await conn.execute(
                sa.update(api_keys)
                .where(api_keys.c.name == "ci")
                .values(user_id=owner.scalar_subquery())
            )
        assert (await ci.get(f"/api/v1/links/{code}")).status_code == 200
        listed = (await ci.get("/api/v1/links")).json()["items"]
        assert [link["code"] for link in listed] == [code]
        assert (await bob.get(f"/api/v1/links/{code}")).status_code == 404
        assert (await bob.get("/api/v1/links")).json()["items"] == []
        assert (await bob.delete(f"/api/v1/links/{code}")).status_code == 404
