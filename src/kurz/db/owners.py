"""One lock between moving links to another user and summing clicks by owner.

The click store sums each batch into owner_clicks_daily and link_clicks_total by the
links' user_id as it reads them; a user's deletion moves their links, and those rows,
to another user. On PostgreSQL (READ COMMITTED) a batch that read the old owner could
otherwise write after the move and leave its clicks with the deleted user. Recording
takes this lock shared, just before those statements; a move takes it exclusive, so
it waits for the batches under way and the next ones wait for it. SQLite's writers
run one at a time already.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

# A transaction-scoped advisory lock's key: "kurzowns" in ASCII. Idempotency keys hash
# into the same 64-bit space (kurz.idempotency.record); a collision would only make
# one wait for the other.
OWNERS_LOCK = 0x6B75727A6F776E73


async def lock_owners(conn: AsyncConnection, *, exclusive: bool) -> None:
    """Hold the owners' lock until the transaction ends (PostgreSQL; nothing on SQLite)."""
    if conn.dialect.name == "postgresql":
        how = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        await conn.exec_driver_sql(f"SELECT {how}({OWNERS_LOCK})")
