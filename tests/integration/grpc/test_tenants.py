"""Tenants over gRPC as over REST: a member cannot read, change, delete or see the stats
of another member's link (NOT_FOUND, as REST's 404, never PERMISSION_DENIED), and an
admin can."""

from __future__ import annotations

import grpc
from fastapi import FastAPI

from kurz.grpc.kurz.v1 import links_pb2 as pb
from tests.integration.auth.support import admin, member
from tests.integration.grpc.support import Reply, assert_same_failure, rest_client, rpc_client
from tests.integration.links.support import create
from tests.support import FakeClock


async def test_a_member_cannot_reach_another_members_link_and_an_admin_can(
    app: FastAPI, clock: FakeClock
) -> None:
    db = app.state.kurz.db
    alice = await member(db, clock, "alice@example.com")
    bob = await member(db, clock, "bob@example.com")
    root = await admin(db, clock, "root@example.com")
    async with rest_client(app, alice.secret) as api:
        code = (await create(api))["code"]

    calls = [
        ("GetLink", pb.GetLinkRequest(code=code), "GET", f"/api/v1/links/{code}"),
        ("GetLinkStats", pb.GetLinkStatsRequest(code=code), "GET", f"/api/v1/links/{code}/stats"),
        ("UpdateLink", pb.UpdateLinkRequest(code=code, expected_version=1),
         "PATCH", f"/api/v1/links/{code}"),
        ("DeleteLink", pb.DeleteLinkRequest(code=code), "DELETE", f"/api/v1/links/{code}"),
    ]  # fmt: skip
    async with rest_client(app, bob.secret) as rest, rpc_client(app, bob.secret) as rpc:
        for method, request, verb, path in calls:
            response = await rest.request(verb, path, json={}, headers={"If-Match": '"1"'})
            failure = await rpc.fails(method, request)
            assert failure.code == grpc.StatusCode.NOT_FOUND, method
            body = assert_same_failure(response, failure)
            assert body["status"] == 404
        listed = await rpc.ok("ListLinks", pb.ListLinksRequest())
        assert list(listed.message.links) == []

    # The link is untouched, and an admin reaches it.
    async with rpc_client(app, root.secret) as rpc:
        found = await rpc.ok("GetLink", pb.GetLinkRequest(code=code))
        assert found.message.version == 1
        assert isinstance(await rpc.ok("GetLinkStats", pb.GetLinkStatsRequest(code=code)), Reply)
        await rpc.ok("DeleteLink", pb.DeleteLinkRequest(code=code))
    async with rest_client(app, alice.secret) as api:
        assert (await api.get(f"/api/v1/links/{code}")).status_code == 404
