"""The links suite runs over both deployments, embedded and scaled out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from kurz.config import Settings
from tests.conftest import Deployment, KeyMaker


@pytest.fixture
def settings(deployment: Deployment) -> Settings:
    return deployment.settings()


@pytest.fixture
async def admin(
    make_key: KeyMaker, client_for: Callable[[str], httpx.AsyncClient]
) -> AsyncIterator[httpx.AsyncClient]:
    """A client with an admin's key (domains are admins' to add)."""
    async with client_for(await make_key("root", admin=True)) as client:
        yield client
