"""Updates through both APIs: versions, preconditions and update_mask against PATCH."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
from fastapi import FastAPI
from google.protobuf.field_mask_pb2 import FieldMask

from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate, scopes_for
from kurz.clock import utcnow
from kurz.db import READ_COMMITTED
from kurz.grpc.kurz.v1 import links_pb2 as pb
from tests.integration.grpc.support import (
    Rpc,
    assert_same_failure,
    instant,
    proto_link,
    rest_get,
    rest_link,
    rpc_client,
    rpc_create,
    rpc_get,
    without_code,
)
from tests.integration.links.support import create
from tests.support import FakeClock


async def twins(api: httpx.AsyncClient, rpc: Rpc, **body: Any) -> tuple[str, str]:
    """Two links alike but for their codes: one made through each API."""
    return (await create(api, **body))["code"], (await rpc_create(rpc, **body))["code"]


async def test_an_update_changes_both_alike(
    api: httpx.AsyncClient, rpc: Rpc, clock: FakeClock
) -> None:
    rest_code, rpc_code = await twins(api, rpc, tags=["a"], max_visits=4)
    clock.advance(60)
    patched = await api.patch(
        f"/api/v1/links/{rest_code}",
        json={"url": "https://example.org/new", "redirect_status": 307, "tags": ["b", "c"]},
        headers={"If-Match": '"1"'},
    )
    assert patched.status_code == 200, patched.text
    request = pb.UpdateLinkRequest(
        code=rpc_code,
        expected_version=1,
        url="https://example.org/new",
        redirect_status=307,
        tags=["b", "c"],
    )
    updated = proto_link((await rpc.ok("UpdateLink", request)).message)
    assert updated == await rpc_get(rpc, rpc_code)
    assert without_code(updated) == without_code(rest_link(patched.json()))
    assert patched.headers["etag"] == f'"{updated["version"]}"' == '"2"'
    # Without a mask, fields left unset stay as they were.
    assert (updated["max_visits"], updated["forward_query"]) == (4, False)
    assert updated["updated_at"] == instant(clock.iso()) != updated["created_at"]


async def test_a_stale_version_fails_alike_with_the_current_one(
    api: httpx.AsyncClient, rpc: Rpc
) -> None:
    code = (await create(api))["code"]
    moved = await rpc.ok(
        "UpdateLink",
        pb.UpdateLinkRequest(code=code, expected_version=1, url="https://example.org/"),
    )
    assert moved.message.version == 2

    stale = {"If-Match": '"1"'}
    response = await api.patch(f"/api/v1/links/{code}", json={"max_visits": 9}, headers=stale)
    failure = await rpc.fails(
        "UpdateLink", pb.UpdateLinkRequest(code=code, expected_version=1, max_visits=9)
    )
    assert response.status_code == 412
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION
    assert failure.info.reason == "PRECONDITION_FAILED"
    assert_same_failure(response, failure)
    assert failure.info.metadata["version"] == response.headers["etag"].strip('"') == "2"

    response = await api.delete(f"/api/v1/links/{code}", headers=stale)
    failure = await rpc.fails("DeleteLink", pb.DeleteLinkRequest(code=code, expected_version=1))
    assert response.status_code == 412
    assert_same_failure(response, failure)
    assert failure.info.metadata["version"] == "2"
    # Nothing was written by the refused calls.
    assert (await rpc_get(rpc, code))["max_visits"] is None
    assert (await rest_get(api, code))["version"] == 2


async def test_an_update_without_a_version_is_refused_alike(
    api: httpx.AsyncClient, rpc: Rpc
) -> None:
    code = (await create(api))["code"]
    response = await api.patch(f"/api/v1/links/{code}", json={"max_visits": 9})
    failure = await rpc.fails("UpdateLink", pb.UpdateLinkRequest(code=code, max_visits=9))
    assert response.status_code == 428
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION
    assert failure.info.reason == "PRECONDITION_REQUIRED"
    # Each API names its own parameter: If-Match, expected_version.
    assert_same_failure(response, failure, same_detail=False)
    assert "expected_version" in failure.message
    assert (await rest_get(api, code))["version"] == 1


async def test_a_masked_path_without_a_value_clears_as_null_does(
    api: httpx.AsyncClient, rpc: Rpc
) -> None:
    rest_code, rpc_code = await twins(
        api,
        rpc,
        valid_from="2026-02-01T00:00:00Z",
        expires_at="2026-03-01T00:00:00Z",
        max_visits=5,
        tags=["a", "b"],
    )
    patched = await api.patch(
        f"/api/v1/links/{rest_code}",
        json={"valid_from": None, "expires_at": None, "max_visits": None, "tags": []},
        headers={"If-Match": '"1"'},
    )
    assert patched.status_code == 200, patched.text
    request = pb.UpdateLinkRequest(
        code=rpc_code,
        expected_version=1,
        # Not in the mask: not applied.
        url="https://example.org/ignored",
        update_mask=FieldMask(paths=["start_time", "expire_time", "max_visits", "tags"]),
    )
    updated = proto_link((await rpc.ok("UpdateLink", request)).message)
    assert without_code(updated) == without_code(rest_link(patched.json()))
    cleared = ("valid_from", "expires_at", "max_visits", "tags")
    assert [updated[name] for name in cleared] == [None, None, None, []]
    assert updated["url"] == "https://example.com/"


async def test_a_masked_value_is_set(rpc: Rpc) -> None:
    code = (await rpc_create(rpc, max_visits=5))["code"]
    request = pb.UpdateLinkRequest(
        code=code,
        expected_version=1,
        max_visits=7,
        forward_query=True,
        update_mask=FieldMask(paths=["max_visits"]),
    )
    updated = proto_link((await rpc.ok("UpdateLink", request)).message)
    assert (updated["max_visits"], updated["forward_query"]) == (7, False)


async def test_an_unknown_mask_path_is_an_invalid_argument(rpc: Rpc) -> None:
    code = (await rpc_create(rpc))["code"]
    request = pb.UpdateLinkRequest(
        code=code, expected_version=1, update_mask=FieldMask(paths=["max_visits", "code"])
    )
    failure = await rpc.fails("UpdateLink", request)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.info.reason == "VALIDATION_ERROR"
    assert failure.info.metadata["type"] == "/problems/validation-error"
    assert list(failure.violations) == ["update_mask"]
    assert "code" in failure.violations["update_mask"]
    assert (await rpc_get(rpc, code))["version"] == 1


async def test_a_masked_url_without_a_value_is_refused_as_null_is(
    api: httpx.AsyncClient, rpc: Rpc
) -> None:
    code = (await create(api))["code"]
    response = await api.patch(
        f"/api/v1/links/{code}", json={"url": None}, headers={"If-Match": '"1"'}
    )
    request = pb.UpdateLinkRequest(
        code=code, expected_version=1, update_mask=FieldMask(paths=["url"])
    )
    failure = await rpc.fails("UpdateLink", request)
    assert response.status_code == 422
    assert failure.violations == {"url": "must not be null"}
    assert_same_failure(response, failure)


async def test_a_version_past_any_kurz_issues_is_a_failed_precondition(
    api: httpx.AsyncClient, rpc: Rpc
) -> None:
    # expected_version is an int64; a link's version column is a 32-bit integer.
    code = (await create(api))["code"]
    for method, request in [
        ("UpdateLink", pb.UpdateLinkRequest(code=code, expected_version=2**40, max_visits=9)),
        ("DeleteLink", pb.DeleteLinkRequest(code=code, expected_version=2**40)),
    ]:
        failure = await rpc.fails(method, request)
        assert failure.code == grpc.StatusCode.FAILED_PRECONDITION, failure
    assert (await rest_get(api, code))["version"] == 1


async def test_who_made_and_changed_a_link_reads_alike(
    app: FastAPI, api: httpx.AsyncClient, rpc: Rpc, secret: str, clock: FakeClock
) -> None:
    db = app.state.kurz.db
    async with db.write(READ_COMMITTED) as conn:
        check = await key_queries.authenticate(conn=conn, secret=secret, now=utcnow(clock))
        ops = await key_queries.create(
            conn=conn,
            key_in=ApiKeyCreate(name="ops", scopes=scopes_for(admin=True)),
            now=utcnow(clock),
        )
    alice = check.principal
    assert alice is not None
    code = (await create(api))["code"]
    made = await rpc_get(rpc, code)
    assert made["created_by"] == {"user": alice.user_id, "key": alice.key_id}
    assert made["updated_by"] is None
    async with rpc_client(app, ops.secret) as admin:
        request = pb.UpdateLinkRequest(code=code, expected_version=1, max_visits=5)
        changed = proto_link((await admin.ok("UpdateLink", request)).message)
    assert changed["created_by"] == made["created_by"]
    assert changed["updated_by"] == {"user": ops.user, "key": ops.id}
    assert await rest_get(api, code) == changed == await rpc_get(rpc, code)
