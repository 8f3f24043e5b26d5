"""kurz.headlimit's protocol over a real socket: where its limits fall, exactly."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.server import ServerState

from kurz.headlimit import HeadLimitedProtocol, HeadLimits, protocol_class

FIELD, HEAD = 1024, 2048
# The deadline is short so that tests waiting for it end soon; PATIENCE only catches
# a connection that is never closed.
DEADLINE, PATIENCE = 0.3, 30.0
START = b"GET / HTTP/1.1\r\nHost: t\r\n"


@dataclass
class Served:
    port: int
    state: ServerState
    # GET /wait answers once this is set.
    release: asyncio.Event
    # Set when a connection's head deadline has passed.
    deadline_passed: asyncio.Event

    async def echo(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answers 200 with how many header fields and body bytes it got."""
        if scope["path"] == "/wait":
            await self.release.wait()
        size = 0
        more = True
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        body = json.dumps({"fields": len(scope["headers"]), "body": size}).encode()
        await send({
            "type": "http.response.start", "status": 200,
            "headers": [(b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def exchange(self, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        """Sends `raw` on a new connection and reads one response."""
        reader, writer = await self.connect()
        try:
            writer.write(raw)
            return await read_response(reader)
        finally:
            writer.close()
            await writer.wait_closed()


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    limits = HeadLimits(max_field_bytes=FIELD, max_head_bytes=HEAD, timeout=DEADLINE)
    served = Served(0, ServerState(), asyncio.Event(), asyncio.Event())

    class Signalling(protocol_class(limits)):  # type: ignore[misc]
        def _on_deadline(self) -> None:
            super()._on_deadline()
            served.deadline_passed.set()

    config = Config(
        app=served.echo,
        interface="asgi3",
        http=Signalling,
        lifespan="off",
        log_config=None,
        access_log=False,
    )
    config.load()
    state = served.state
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Signalling(config=config, server_state=state, app_state={}), "127.0.0.1", 0
    )
    served.port = server.sockets[0].getsockname()[1]
    try:
        yield served
    finally:
        server.close()
        for connection in list(state.connections):
            connection.transport.close()
        await server.wait_closed()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), PATIENCE)
    status_line, *lines = head.decode("latin-1").strip().split("\r\n")
    fields = {}
    for line in lines:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(fields["content-length"]))
    return int(status_line.split()[1]), fields, body


def head_of(size: int, *, fields: int = 0) -> bytes:
    """A GET whose head is exactly `size` bytes: filler fields of at most FIELD bytes."""
    end = b"\r\n"
    room = size - len(START) - len(end)
    filler = []
    while room > 0:
        # "X: " + value + CRLF; the field (name and value) at most FIELD bytes.
        value_len = min(room - 5, FIELD - 1)
        assert value_len >= 0
        filler.append(b"X: " + b"v" * value_len + b"\r\n")
        room -= value_len + 5
    raw = START + b"".join(filler) + end
    assert len(raw) == size
    return raw


async def test_a_head_of_exactly_the_limit_is_served(served: Served) -> None:
    status, _, _ = await served.exchange(head_of(HEAD))
    assert status == 200


async def test_a_head_one_byte_over_the_limit_gets_431(served: Served) -> None:
    status, fields, body = await served.exchange(head_of(HEAD + 1))
    assert status == 431
    assert fields["content-type"] == "application/problem+json"
    assert fields["connection"] == "close"
    assert json.loads(body) == {
        "type": "/problems/request-header-fields-too-large",
        "title": "Request Header Fields Too Large",
        "status": 431,
        "detail": f"The request head exceeds {HEAD} bytes.",
    }


async def test_a_head_past_the_limit_over_several_reads_gets_431(served: Served) -> None:
    reader, writer = await served.connect()
    try:
        writer.write(START)
        for _ in range(HEAD // 100 + 1):
            writer.write(b"Y: " + b"w" * 95 + b"\r\n")
            await writer.drain()
        assert (await read_response(reader))[0] == 431
    finally:
        writer.close()


@pytest.mark.parametrize(("size", "status"), [(FIELD, 200), (FIELD + 1, 431)])
async def test_one_field_is_held_to_its_own_limit(served: Served, size: int, status: int) -> None:
    # Name and value together: "Big" and size - 3 bytes of value.
    raw = START + b"Big: " + b"z" * (size - 3) + b"\r\n\r\n"
    got, _, body = await served.exchange(raw)
    assert got == status
    if status == 431:
        assert json.loads(body)["detail"] == f"A header field exceeds {FIELD} bytes."


async def test_a_body_read_with_its_head_does_not_count_as_head(served: Served) -> None:
    body = b"b" * (HEAD * 4)
    raw = (
        b"POST / HTTP/1.1\r\nHost: t\r\n"
        + b"X: " + b"v" * (FIELD - 1) + b"\r\n"
        + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        + body
    )  # fmt: skip
    status, _, answer = await served.exchange(raw)
    assert status == 200
    assert json.loads(answer) == {"fields": 3, "body": len(body)}


async def test_pipelined_and_kept_alive_requests_each_get_the_whole_limit(
    served: Served,
) -> None:
    reader, writer = await served.connect()
    try:
        # Three large heads in one write, then three more one by one: far past one limit.
        writer.write(head_of(HEAD - 100) * 3)
        for _ in range(3):
            assert (await read_response(reader))[0] == 200
        for _ in range(3):
            writer.write(head_of(HEAD))
            assert (await read_response(reader))[0] == 200
    finally:
        writer.close()


async def test_a_request_that_is_not_http_gets_a_400_problem(served: Served) -> None:
    status, fields, body = await served.exchange(b"NOT HTTP AT ALL\r\n\r\n")
    assert status == 400
    assert fields["content-type"] == "application/problem+json"
    assert json.loads(body)["type"] == "/problems/bad-request"


async def test_a_head_still_incomplete_at_the_deadline_gets_408(served: Served) -> None:
    reader, writer = await served.connect()
    try:
        writer.write(START + b"X-Slow: ")
        status, fields, body = await read_response(reader)
        assert status == 408
        assert fields["connection"] == "close"
        assert json.loads(body)["type"] == "/problems/request-timeout"
        assert await asyncio.wait_for(reader.read(), PATIENCE) == b""
    finally:
        writer.close()


async def test_a_connection_that_sends_nothing_is_closed_unanswered(served: Served) -> None:
    reader, writer = await served.connect()
    try:
        assert await asyncio.wait_for(reader.read(), PATIENCE) == b""
    finally:
        writer.close()


async def test_blank_lines_after_a_request_do_not_hold_a_connection_open(
    served: Served,
) -> None:
    # uvicorn's keep-alive timer stops at any byte; blank lines start no message.
    reader, writer = await served.connect()
    try:
        writer.write(head_of(100))
        assert (await read_response(reader))[0] == 200
        writer.write(b"\r\n")
        assert (await read_response(reader))[0] == 408
    finally:
        writer.close()


async def test_a_complete_head_leaves_no_deadline_running(served: Served) -> None:
    reader, writer = await served.connect()
    try:
        writer.write(head_of(HEAD))
        assert (await read_response(reader))[0] == 200
        (connection,) = served.state.connections
        assert isinstance(connection, HeadLimitedProtocol)
        assert connection._head.timer is None
    finally:
        writer.close()


async def test_a_late_head_behind_a_response_under_way_ends_the_connection_after_it(
    served: Served,
) -> None:
    reader, writer = await served.connect()
    try:
        writer.write(b"GET /wait HTTP/1.1\r\nHost: t\r\n\r\n" + START + b"X-Slow: ")
        await asyncio.wait_for(served.deadline_passed.wait(), PATIENCE)
        served.release.set()
        # The answer under way is not cut short, and no 408 is written into it.
        status, fields, _ = await read_response(reader)
        assert status == 200
        assert fields["connection"] == "close"
        assert await asyncio.wait_for(reader.read(), PATIENCE) == b""
    finally:
        writer.close()


async def test_expect_100_continue_is_still_honoured(served: Served) -> None:
    reader, writer = await served.connect()
    try:
        writer.write(
            b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        )
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), PATIENCE)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"hello")
        status, _, body = await read_response(reader)
        assert status == 200
        assert json.loads(body)["body"] == 5
    finally:
        writer.close()


# A request read whole in one small read takes the fast path (no count, no timer); the
# tests below begin a head on that path and check that its limits still hold.


async def test_a_head_left_incomplete_after_a_kept_alive_request_gets_408(
    served: Served,
) -> None:
    reader, writer = await served.connect()
    try:
        writer.write(head_of(100))
        assert (await read_response(reader))[0] == 200
        writer.write(START + b"X-Slow: ")
        status, fields, body = await read_response(reader)
        assert status == 408
        assert fields["connection"] == "close"
        assert json.loads(body)["type"] == "/problems/request-timeout"
    finally:
        writer.close()


async def test_a_field_trickled_past_its_limit_after_a_kept_alive_request_gets_431(
    served: Served,
) -> None:
    reader, writer = await served.connect()
    try:
        writer.write(head_of(100))
        assert (await read_response(reader))[0] == 200
        writer.write(START + b"Big: ")
        await writer.drain()
        # Small writes, each of which alone would take the fast path.
        for _ in range(FIELD // 64 + 1):
            writer.write(b"z" * 64)
            await writer.drain()
        status, _, body = await read_response(reader)
        assert status == 431
        assert json.loads(body)["detail"] == f"A header field exceeds {FIELD} bytes."
    finally:
        writer.close()


async def test_a_head_trickled_past_its_limit_after_a_kept_alive_request_gets_431(
    served: Served,
) -> None:
    reader, writer = await served.connect()
    try:
        writer.write(head_of(100))
        assert (await read_response(reader))[0] == 200
        writer.write(START)
        for _ in range(HEAD // 100 + 1):
            writer.write(b"Y: " + b"w" * 95 + b"\r\n")
            await writer.drain()
        status, _, body = await read_response(reader)
        assert status == 431
        assert json.loads(body)["detail"] == f"The request head exceeds {HEAD} bytes."
    finally:
        writer.close()


@pytest.mark.parametrize(("size", "status"), [(FIELD, 200), (FIELD + 1, 431)])
async def test_the_request_line_is_held_to_a_fields_limit(
    served: Served, size: int, status: int
) -> None:
    # As Node's --max-http-header-size: the request line is a line of the head too.
    line = b"GET /" + b"p" * (size - len(b"GET / HTTP/1.1")) + b" HTTP/1.1"
    assert len(line) == size
    got, _, _ = await served.exchange(line + b"\r\nHost: t\r\n\r\n")
    assert got == status


async def test_a_field_with_room_for_its_whitespace_is_held_to_name_and_value(
    served: Served,
) -> None:
    # Whitespace around the value is not the field's: FIELD bytes of name and value.
    raw = START + b"Big:  \t " + b"z" * (FIELD - 3) + b" \t\r\n\r\n"
    assert (await served.exchange(raw))[0] == 200
