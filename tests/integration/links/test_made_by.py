"""Each link says who made it and who changed it last: a user, and the key they used."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate, ApiKeyCreated, scopes_for
from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, Database
from tests.integration.links.support import create
from tests.support import FakeClock


async def new_key(db: Database, clock: FakeClock, name: str, *, admin: bool) -> ApiKeyCreated:
    async with db.write(READ_COMMITTED) as conn:
        return await key_queries.create(
            conn=conn,
            key_in=ApiKeyCreate(name=name, scopes=scopes_for(admin=admin)),
            now=utcnow(clock),
        )


async def test_a_link_names_its_maker_and_its_last_changer(
    db: Database, clock: FakeClock, client_for: Callable[[str], httpx.AsyncClient]
) -> None:
    mine = await new_key(db, clock, "laptop", admin=False)
    ops = await new_key(db, clock, "ops", admin=True)
    assert mine.user != ops.user
    async with client_for(mine.secret) as member, client_for(ops.secret) as admin:
        made = await create(member)
        assert made["created_by"] == {"user": mine.user, "key": mine.id}
        assert made["updated_by"] is None
        code = made["code"]

        changed = await admin.patch(
            f"/api/v1/links/{code}", json={"max_visits": 5}, headers={"If-Match": '"1"'}
        )
        assert changed.status_code == 200, changed.text
        for reader in (member, admin):
            link = (await reader.get(f"/api/v1/links/{code}")).json()
            assert link["created_by"] == {"user": mine.user, "key": mine.id}
            assert link["updated_by"] == {"user": ops.user, "key": ops.id}
        listed = (await member.get("/api/v1/links")).json()["items"]
        assert [(item["created_by"], item["updated_by"]) for item in listed] == [
            ({"user": mine.user, "key": mine.id}, {"user": ops.user, "key": ops.id})
        ]

        # The maker changes it back: the last change is theirs.
        again = await member.patch(
            f"/api/v1/links/{code}", json={"max_visits": None}, headers={"If-Match": '"2"'}
        )
        assert again.json()["updated_by"] == {"user": mine.user, "key": mine.id}
        assert again.json()["created_by"] == made["created_by"]
