"""A source that reads from a list (for the import engine's tests), and the users and
principals the tests import as."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from kurz.auth.models import Principal, Role
from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import users
from kurz.imports.sources import Item, Opening, Page, Source, SourceError, SourceKind
from kurz.types import Clock


@dataclass
class Listed(Source):
    """Pages of a list; the position is the index of the next page. `broken`: the
    page index at which reading raises SourceError."""

    pages_: Sequence[Sequence[Item]]
    broken: int | None = None
    closed: bool = False

    async def total(self) -> int | None:
        return sum(1 for page in self.pages_ for item in page if hasattr(item, "url"))

    async def pages(self, after: str | None) -> AsyncIterator[Page]:
        for index in range(0 if after is None else int(after), len(self.pages_)):
            if index == self.broken:
                raise SourceError(f"page {index} cannot be read")
            yield Page(self.pages_[index], str(index + 1))

    async def aclose(self) -> None:
        self.closed = True


def listed_kind(pages: Sequence[Sequence[Item]], *, broken: int | None = None) -> SourceKind:
    def opened(opening: Opening) -> Source:
        return Listed(pages, broken)

    return SourceKind(name="listed", title="A list", source="listed", takes_file=False, open=opened)


async def user(db: Database, clock: Clock, email: str, *, role: Role = "member") -> Principal:
    async with db.write(READ_COMMITTED) as conn:
        user_id = (
            await conn.execute(
                sa.insert(users)
                .values(email=email, role=role, created_at=utcnow(clock))
                .returning(users.c.id)
            )
        ).scalar_one()
    scopes = frozenset({"links:read", "links:write", *(("admin",) if role == "admin" else ())})
    return Principal(user_id=user_id, role=role, scopes=scopes, name=email)
