"""The webhooks suite: on SQLite and PostgreSQL, sending to receivers on 127.0.0.1
(KURZ_WEBHOOK_ALLOW_PRIVATE), on the test's clock, with a worker the test runs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from kurz.bootstrap import Parts
from kurz.config import Settings
from kurz.jobs import Worker
from tests.conftest import app_settings
from tests.integration.webhooks.receiver import Receiver, receiving

KEY = "a test key of at least 32 characters"
# Long enough for a loaded machine to answer on loopback; the hanging receiver waits it.
TIMEOUT = 2.0


@pytest.fixture
def settings(database_url: str) -> Settings:
    return app_settings(
        database_url, webhook_allow_private=True, webhook_key=KEY, webhook_timeout=TIMEOUT
    )


@pytest.fixture
def parts(app: FastAPI) -> Parts:
    found = app.state.kurz
    assert isinstance(found, Parts)
    return found


@pytest.fixture
def worker(parts: Parts) -> Worker:
    # Room for every periodic job and the deliveries in one claim.
    return Worker(parts.jobs, parts.registry, concurrency=32)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as found:
        yield found
