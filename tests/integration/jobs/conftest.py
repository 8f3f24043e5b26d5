"""A job store on the test's own database (SQLite or PostgreSQL), on the test's clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kurz.db import Database
from kurz.jobs import JobStore
from tests.support import FakeClock


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database.from_url(database_url)
    yield database
    await database.dispose()


@pytest.fixture
async def store(db: Database, clock: FakeClock) -> AsyncIterator[JobStore]:
    jobs = JobStore(db, clock)
    yield jobs
    await jobs.close()
