"""One running app per test, called through REST (ASGI, in process) and gRPC (a real
channel to the port its lifespan serves): both reach the same database, caches,
limiter and idempotency store; over both deployments, embedded and scaled out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from kurz.config import Settings
from tests.conftest import Deployment, KeyMaker
from tests.integration.grpc.support import Rpc, rest_client, rpc_client, serving
from tests.support import FakeClock


@pytest.fixture
def settings(deployment: Deployment) -> Settings:
    return deployment.settings()


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[FastAPI]:
    async with serving(settings, clock) as app:
        yield app


@pytest.fixture
async def secret(make_key: KeyMaker) -> str:
    """The key both clients call with, so that they see the same links."""
    return await make_key("alice")


@pytest.fixture
async def api(app: FastAPI, secret: str) -> AsyncIterator[httpx.AsyncClient]:
    async with rest_client(app, secret) as client:
        yield client


@pytest.fixture
async def rpc(app: FastAPI, secret: str) -> AsyncIterator[Rpc]:
    async with rpc_client(app, secret) as client:
        yield client
