"""The idempotency suite's apps run over both deployments, embedded and scaled out; its
store tests take `database_url` and keep to the store on each backend."""

from __future__ import annotations

import pytest

from kurz.config import Settings
from tests.conftest import Deployment


@pytest.fixture
def settings(deployment: Deployment) -> Settings:
    return deployment.settings()
