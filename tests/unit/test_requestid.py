"""X-Request-ID: made for every request, taken only from a trusted proxy, and only
when it is a well-formed id."""

from __future__ import annotations

import re
from ipaddress import ip_network

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from kurz.logs import REQUEST_ID
from kurz.requestid import RequestIds

MADE = re.compile(r"[0-9a-f]{16}")
LOCAL = (ip_network("127.0.0.0/8"),)


class Echo:
    """An app that answers with the request id it sees in the context."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        seen = (REQUEST_ID.get() or "").encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": seen})


async def ask(app: RequestIds, given: str | bytes | None = None) -> httpx.Response:
    # httpx's ASGI transport connects from 127.0.0.1.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kurz.test") as client:
        headers = [] if given is None else [(b"x-request-id", _bytes(given))]
        return await client.get("/", headers=headers)


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


async def test_a_request_without_one_gets_one_made_and_echoed() -> None:
    response = await ask(RequestIds(Echo(), ()))
    made = response.headers["x-request-id"]
    assert response.text == made
    assert MADE.fullmatch(made)
    again = await ask(RequestIds(Echo(), ()))
    assert again.headers["x-request-id"] != made
    assert REQUEST_ID.get() is None


async def test_a_client_that_is_no_trusted_proxy_cannot_set_it() -> None:
    response = await ask(RequestIds(Echo(), ()), "chosen-by-client")
    assert response.headers["x-request-id"] != "chosen-by-client"
    elsewhere = (ip_network("10.0.0.0/8"),)
    response = await ask(RequestIds(Echo(), elsewhere), "chosen-by-client")
    assert response.headers["x-request-id"] != "chosen-by-client"


@pytest.mark.parametrize(
    "given", ["3f9a2c1d-uuid", "Root=1-67891233-abcdef012345678912345678", "x" * 128]
)
async def test_a_trusted_proxys_id_is_taken(given: str) -> None:
    response = await ask(RequestIds(Echo(), LOCAL), given)
    assert response.headers["x-request-id"] == given
    assert response.text == given


@pytest.mark.parametrize("given", [b"", b"two words", b"x" * 129, b"tab\there", "é".encode()])
async def test_a_malformed_id_is_replaced_even_from_a_trusted_proxy(given: bytes) -> None:
    response = await ask(RequestIds(Echo(), LOCAL), given)
    assert MADE.fullmatch(response.headers["x-request-id"])
