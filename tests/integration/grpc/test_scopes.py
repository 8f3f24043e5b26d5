"""Scopes over gRPC: each method asks for the scope its REST route asks for, and a key
without it is refused alike (PERMISSION_DENIED, reason INSUFFICIENT_SCOPE)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from google.protobuf.message import Message

from kurz.auth.models import SCOPES, Scope
from kurz.db import READ_COMMITTED
from kurz.db.tables import users
from kurz.grpc.kurz.v1 import links_pb2 as pb
from tests.integration.auth.support import admin, new_key
from tests.integration.grpc.support import assert_same_failure, rest_client, rpc_client
from tests.integration.links.support import create
from tests.support import FakeClock

# Each method, its REST twin, and the scope both need.
METHODS: list[tuple[str, Any, str, str, Scope]] = [
    ("CreateLink", lambda code: pb.CreateLinkRequest(url="https://example.com/"),
     "POST", "/api/v1/links", "links:write"),
    ("BatchCreateLinks", lambda code: pb.BatchCreateLinksRequest(
        requests=[pb.CreateLinkRequest(url="https://example.com/")]),
     "POST", "/api/v1/links/batch", "links:write"),
    ("UpdateLink", lambda code: pb.UpdateLinkRequest(code=code, expected_version=1),
     "PATCH", "/api/v1/links/{code}", "links:write"),
    ("DeleteLink", lambda code: pb.DeleteLinkRequest(code=code),
     "DELETE", "/api/v1/links/{code}", "links:write"),
    ("GetLink", lambda code: pb.GetLinkRequest(code=code),
     "GET", "/api/v1/links/{code}", "links:read"),
    ("ListLinks", lambda code: pb.ListLinksRequest(),
     "GET", "/api/v1/links", "links:read"),
    ("GetLinkStats", lambda code: pb.GetLinkStatsRequest(code=code),
     "GET", "/api/v1/links/{code}/stats", "stats:read"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "request_for", "verb", "path", "needed"), METHODS, ids=[m[0] for m in METHODS]
)
async def test_a_key_without_the_methods_scope_is_refused_as_rest_refuses_it(
    app: FastAPI,
    clock: FakeClock,
    method: str,
    request_for: Any,
    verb: str,
    path: str,
    needed: Scope,
) -> None:
    db = app.state.kurz.db
    root = await admin(db, clock, "root@example.com")
    async with rest_client(app, root.secret) as api:
        code = (await create(api))["code"]
    lacking = await new_key(db, clock, root.user_id, [s for s in SCOPES if s != needed])
    only = await new_key(db, clock, root.user_id, [needed])
    request: Message = request_for(code)
    async with rest_client(app, lacking.secret) as rest, rpc_client(app, lacking.secret) as rpc:
        response = await rest.request(
            verb,
            path.format(code=code),
            json={"url": "https://example.com/"},
            headers={"If-Match": '"1"'},
        )
        failure = await rpc.fails(method, request)
    assert failure.code == grpc.StatusCode.PERMISSION_DENIED
    assert failure.info.reason == "INSUFFICIENT_SCOPE"
    body = assert_same_failure(response, failure)
    assert body["required_scope"] == needed
    async with rpc_client(app, only.secret) as rpc:
        await rpc.ok(method, request)


async def test_resolving_ones_own_visit_needs_no_scope_and_naming_a_visitor_needs_proxy(
    app: FastAPI, clock: FakeClock
) -> None:
    db = app.state.kurz.db
    root = await admin(db, clock, "root@example.com")
    async with rest_client(app, root.secret) as api:
        code = (await create(api))["code"]
    scraper = await new_key(db, clock, root.user_id, ["metrics:read"])
    proxy = await new_key(db, clock, root.user_id, ["proxy"])
    async with rpc_client(app, scraper.secret) as rpc:
        own = await rpc.ok("ResolveLink", pb.ResolveLinkRequest(code=code))
        assert own.message.location == "https://example.com/"
        named = pb.ResolveLinkRequest(code=code, client_ip="192.0.2.7")
        assert (await rpc.fails("ResolveLink", named)).info.reason == "PROXY_KEY_REQUIRED"
    async with rpc_client(app, proxy.secret) as rpc:
        await rpc.ok("ResolveLink", named)


async def test_a_demoted_admins_proxy_key_loses_proxy_at_once(
    app: FastAPI, clock: FakeClock
) -> None:
    db = app.state.kurz.db
    root = await admin(db, clock, "root@example.com")
    async with rest_client(app, root.secret) as api:
        code = (await create(api))["code"]
    named = pb.ResolveLinkRequest(code=code, client_ip="192.0.2.7")
    async with rpc_client(app, root.secret) as rpc:
        await rpc.ok("ResolveLink", named)
        async with db.write(READ_COMMITTED) as conn:
            await conn.execute(
                sa.update(users).where(users.c.id == root.user_id).values(role="member")
            )
        assert (await rpc.fails("ResolveLink", named)).info.reason == "PROXY_KEY_REQUIRED"
        # What a member may do, the key still does.
        await rpc.ok("GetLinkStats", pb.GetLinkStatsRequest(code=code))
