"""The store-level analytics tests' database: migrated, on both backends, no app."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kurz.db import Database


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database.from_url(database_url)
    yield database
    await database.dispose()
