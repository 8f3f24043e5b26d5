"""A code only ever resolved over gRPC earns its place in L1 as one followed over HTTP
does: ResolveLink counts its read for TinyLFU's admission (issue 19's first defect)."""

from __future__ import annotations

import httpx
import pytest

from kurz.config import Settings
from kurz.grpc.kurz.v1 import links_pb2 as pb
from tests.integration.grpc.support import Rpc
from tests.integration.links.support import create

L1_SIZE = 4


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"redirect_cache_size": L1_SIZE, "redirect_cache_admission": "tinylfu"}
    )


async def test_a_code_resolved_only_over_grpc_is_admitted_once_it_is_hot(
    app: object, api: httpx.AsyncClient, anon: httpx.AsyncClient, rpc: Rpc
) -> None:
    hot = [(await create(api))["code"] for _ in range(L1_SIZE)]
    # Fill L1 with links followed over HTTP, each a few times, so that every entry a
    # newcomer would evict has been counted.
    for _ in range(3):
        for code in hot:
            assert (await anon.get(f"/{code}")).status_code == 302
    l1 = app.state.kurz.targets.l1  # type: ignore[attr-defined]
    assert all(code in l1 for code in hot)
    newcomer = (await create(api))["code"]
    for _ in range(20):
        await rpc.ok("ResolveLink", pb.ResolveLinkRequest(code=newcomer, peek=True))
    # Twenty reads against three: more frequent than any entry it would evict.
    assert newcomer in l1
