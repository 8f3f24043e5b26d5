"""Unique codes across processes (racing writers of one ETag: tests/e2e/test_exactness.py)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

from sqlalchemy import func, select

from kurz.config import Settings
from kurz.db import Database
from kurz.db.tables import links
from tests.conftest import KeyMaker

# Each process draws codes from a space of 4**4 = 256, so processes collide often and
# only the unique index (with retry) keeps the codes apart.
_WORKER = textwrap.dedent(
    """
    import asyncio, secrets, sys
    from datetime import UTC, datetime
    from kurz.auth.models import MEMBER_SCOPES, Principal
    from kurz.db import READ_COMMITTED, Database
    from kurz.links import codes, queries
    from kurz.links.models import LinkCreate
    from kurz.links.urls import Origins

    codes.generate = lambda: "".join(secrets.choice("abcd") for _ in range(4))

    async def main(url, owner, count):
        db = Database.from_url(url)
        principal = Principal(
            user_id=owner, role="member", scopes=MEMBER_SCOPES, name="w", key_id=owner
        )
        for i in range(count):
            async with db.write(READ_COMMITTED) as conn:
                await queries.create(
                    conn=conn, link_in=LinkCreate(url=f"https://e.com/{i}"), domain_id=0,
                    owner=principal,
                    now=datetime.now(UTC), base_url="https://kurz.test",
                    own=Origins.of(base_url="https://kurz.test", host="127.0.0.1", port=8080),
                )
        await db.dispose()

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
    """
)


async def test_generated_codes_never_collide_across_processes(
    settings: Settings, make_key: KeyMaker, db: Database
) -> None:
    await make_key("owner")
    processes, per_process = 3, 20
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _WORKER,
            settings.database_url,
            "1",
            str(per_process),
            stderr=subprocess.PIPE,
        )
        for _ in range(processes)
    ]
    for proc in procs:
        _, stderr = await proc.communicate()
        assert proc.returncode == 0, stderr.decode()
    async with db.read() as conn:
        total, distinct = (
            await conn.execute(select(func.count(), func.count(links.c.code.distinct())))
        ).one()
    assert total == distinct == processes * per_process
