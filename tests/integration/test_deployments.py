"""The two deployments the app-level suites run over are what they claim to be:
embedded keeps everything in process, scaled out puts each shared part in Redis."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from redis import Redis as SyncRedis

from kurz.analytics.stream import STREAM
from kurz.config import Settings
from tests.conftest import BASE_URL, Deployment, KeyMaker, ScaledRedis
from tests.integration.links.support import create
from tests.support import FakeClock, RedisServer, record_queued_clicks, running

POLICY = "100/60s;burst=100"


def dump(url: str) -> dict[str, bytes]:
    """Every key on the server, with its serialized value."""
    client = SyncRedis.from_url(url)
    try:
        names: list[bytes] = client.keys("*")  # type: ignore[assignment]
        return {name.decode(): client.dump(name) for name in names}  # type: ignore[misc]
    finally:
        client.close()


def keys(url: str) -> list[str]:
    return sorted(dump(url))


def dumps(servers: list[RedisServer]) -> list[dict[str, bytes]]:
    return [dump(server.url) for server in servers]


@pytest.fixture
def settings(deployment: Deployment) -> Settings:
    return deployment.settings(analytics=True, ratelimit_redirect=POLICY)


@pytest.mark.parametrize("deployment", ["embedded"], indirect=True)
async def test_embedded_keeps_everything_in_process(app: FastAPI, settings: Settings) -> None:
    assert settings.is_sqlite
    assert (settings.redis_url, settings.cache_nodes) == ("", ())
    state = app.state.kurz
    assert state.limits.in_process
    assert state.targets.cache.l2 is None
    assert state.targets.cache.bus is None
    assert state.analytics.redis is None


@pytest.mark.parametrize("deployment", ["scaled"], indirect=True)
async def test_scaled_out_shares_limits_links_changes_and_clicks_through_redis(
    scaled_redis: ScaledRedis,
    settings: Settings,
    clock: FakeClock,
    make_key: KeyMaker,
    app: FastAPI,
) -> None:
    assert not settings.is_sqlite
    # Emptied for this test: whatever an earlier test left is gone.
    assert [keys(server.url) for server in scaled_redis.servers] == [[]] * 4
    secret = await make_key("alice")
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers) as api:
        link = await create(api)
        code = link["code"]
        listener = SyncRedis.from_url(scaled_redis.nodes[0].url).pubsub()  # type: ignore[no-untyped-call]
        listener.subscribe("kurz:invalidate")
        assert listener.get_message(timeout=10)["type"] == "subscribe"
        try:
            # Made: a tombstone for its code on every node (a creation invalidates).
            tombstones = dumps(scaled_redis.nodes)
            assert [list(node) for node in tombstones] == [[f"kurz:link:{code}"]] * 3
            assert (await api.get(f"/{code}")).status_code == 302
            # Followed: the link's value on the node that holds its code.
            loaded = dumps(scaled_redis.nodes)
            assert sum(a != b for a, b in zip(tombstones, loaded, strict=True)) == 1
            # A second process, as scaled-out kurz runs: the same nodes, the same stream.
            async with running(settings, clock) as other:
                async with httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=other), base_url=BASE_URL
                ) as anon:
                    assert (await anon.get(f"/{link['code']}")).status_code == 302
                await record_queued_clicks(other.state.kurz.analytics)
            changed = await api.patch(
                f"/api/v1/links/{link['code']}",
                json={"url": "https://example.org/"},
                headers={"If-Match": '"1"'},
            )
            assert changed.status_code == 200, changed.text
            heard = listener.get_message(timeout=10)
        finally:
            listener.close()
        assert heard is not None
        assert heard["data"] == link["code"].encode()
    shared = keys(scaled_redis.main.url)
    assert STREAM in shared
    assert any(key.startswith("kurz:rl:redirect:") for key in shared), shared
