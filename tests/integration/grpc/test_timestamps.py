"""Timestamps a message can carry but no instant matches: refused, never a crash.

A google.protobuf.Timestamp is valid from 0001-01-01 to 9999-12-31 with nanos 0 to
999,999,999; any int64 seconds and int32 nanos still travel. REST cannot send such a
value (its dates are text), so there is no REST answer to compare with.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import grpc
import httpx
import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from kurz.grpc.kurz.v1 import links_pb2 as pb
from tests.integration.grpc.support import Rpc, rpc_get
from tests.integration.links.support import create

OUT_OF_RANGE = {
    "year-10000": Timestamp(seconds=253402300800),
    "year-0": Timestamp(seconds=-62135596801),
    "nanos-negative": Timestamp(seconds=1767225600, nanos=-1),
    "nanos-a-second": Timestamp(seconds=1767225600, nanos=1_000_000_000),
}
Build = Callable[[str, Timestamp], Message]
# Each Timestamp field of a request, in a request that is otherwise valid.
FIELDS: dict[str, tuple[str, Build]] = {
    "create-expire_time": (
        "CreateLink",
        lambda code, at: pb.CreateLinkRequest(url="https://example.com/", expire_time=at),
    ),
    "update-expire_time": (
        "UpdateLink",
        lambda code, at: pb.UpdateLinkRequest(code=code, expected_version=1, expire_time=at),
    ),
    "stats-start_time": (
        "GetLinkStats",
        lambda code, at: pb.GetLinkStatsRequest(code=code, start_time=at),
    ),
    "stats-end_time": (
        "GetLinkStats",
        lambda code, at: pb.GetLinkStatsRequest(code=code, end_time=at),
    ),
}


@pytest.mark.parametrize("bad", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE.keys())
@pytest.mark.parametrize("field", FIELDS.keys())
async def test_an_out_of_range_timestamp_is_an_invalid_argument(
    api: httpx.AsyncClient,
    rpc: Rpc,
    field: str,
    bad: Timestamp,
    caplog: pytest.LogCaptureFixture,
) -> None:
    code = (await create(api))["code"]
    method, build = FIELDS[field]
    name = field.partition("-")[2]
    with caplog.at_level(logging.ERROR, logger="kurz"):
        failure = await rpc.fails(method, build(code, bad))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.info.reason == "VALIDATION_ERROR"
    assert list(failure.violations) == [name]
    assert "0001-01-01T00:00:00Z" in failure.violations[name]
    assert failure.message == f"{name}: {failure.violations[name]}"
    assert [record for record in caplog.records if record.exc_info] == []
    # Nothing was written: the one link there is is as it was made.
    listed = (await api.get("/api/v1/links")).json()["items"]
    assert [item["code"] for item in listed] == [code]
    assert (await rpc_get(rpc, code))["version"] == 1


async def test_the_last_valid_instant_is_accepted(rpc: Rpc) -> None:
    last = Timestamp(seconds=253402300799, nanos=999_999_999)
    request = pb.CreateLinkRequest(url="https://example.com/", expire_time=last)
    made = (await rpc.ok("CreateLink", request)).message
    # Kept to the microsecond, as REST keeps it.
    assert made.expire_time == Timestamp(seconds=253402300799, nanos=999_999_000)
