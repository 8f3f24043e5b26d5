"""The export suite runs over both deployments, embedded and scaled out."""

from __future__ import annotations

import pytest

from kurz.config import Settings
from tests.conftest import Deployment


@pytest.fixture
def settings(deployment: Deployment) -> Settings:
    return deployment.settings()
