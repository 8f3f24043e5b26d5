"""kurz.imports.http, the API sources' client, against a local HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from kurz.imports import http
from kurz.imports.http import ApiClient, ApiError, retry_after
from kurz.imports.kutt_api import KuttSettings
from kurz.imports.shlink_api import ShlinkSettings
from kurz.imports.sources import SourceError
from tests.integration.imports.apiserver import Answer, ApiServer, Asked, answer_json, serving
from tests.support import free_port


def ok(asked: Asked) -> Answer:
    return answer_json({"path": asked.path, "query": asked.query})


@pytest.fixture
async def server() -> AsyncIterator[ApiServer]:
    async with serving(ok) as found:
        yield found


class Waits:
    """A sleep that records what it was asked to wait, and waits for nothing."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)


def client(url: str, *, allow_private: bool = True, waits: Waits | None = None) -> ApiClient:
    return ApiClient(
        name="Thing",
        base_url=url,
        headers={"x-api-key": "sekrit"},
        allow_private=allow_private,
        credential="API key",
        sleep=waits or Waits(),
    )


async def get(found: ApiClient, path: str = "/api/things", **params: Any) -> Any:
    try:
        return await found.get(path, params)
    finally:
        await found.aclose()


async def test_a_get_sends_the_headers_and_reads_the_json(server: ApiServer) -> None:
    assert await get(client(server.url + "/"), n=1) == {
        "path": "/api/things",
        "query": {"n": "1"},
    }
    (asked,) = server.asked
    assert asked.headers["x-api-key"] == "sekrit"
    assert asked.headers["accept"] == "application/json"
    assert asked.headers["user-agent"].startswith("kurz-import/")


async def test_without_retry_after_429s_are_asked_again_with_backoff_then_fail(
    server: ApiServer,
) -> None:
    server.once = [Answer(429, b'{"error": "slow down"}') for _ in range(6)]
    waits = Waits()
    with pytest.raises(ApiError) as caught:
        await get(client(server.url, waits=waits))
    assert waits.asked == [2.0, 4.0, 8.0, 16.0, 32.0]
    assert len(server.asked) == 6
    assert caught.value.status == 429
    assert str(caught.value) == (
        "Thing still answered HTTP 429 (too many requests) after 5 retries; "
        "run the import again later (slow down)"
    )


async def test_a_429_then_a_success_is_a_success(server: ApiServer) -> None:
    server.once = [Answer(429, b"", {"retry-after": "0"}), Answer(503, b"", {"retry-after": "1"})]
    waits = Waits()
    assert (await get(client(server.url, waits=waits)))["path"] == "/api/things"
    assert waits.asked == [0.0, 1.0]


async def test_a_retry_after_too_long_to_wait_fails_at_once(server: ApiServer) -> None:
    server.once = [Answer(429, b"", {"retry-after": "3600"})]
    waits = Waits()
    with pytest.raises(ApiError) as caught:
        await get(client(server.url, waits=waits))
    assert waits.asked == []
    assert str(caught.value) == (
        "Thing answered HTTP 429 (too many requests) and asks to wait 3,600 s before "
        "asking again; run the import again later"
    )


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after(None, default=2.0, now=now) == 2.0
    assert retry_after("7", default=2.0, now=now) == 7.0
    assert retry_after("Thu, 01 Jan 2026 12:01:30 GMT", default=2.0, now=now) == 90.0
    assert retry_after("Thu, 01 Jan 2026 11:00:00 GMT", default=2.0, now=now) == 0.0
    assert retry_after("soon", default=2.0, now=now) == 2.0


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            answer_json({"error": "Unauthorized."}, 401),
            "Thing answered HTTP 401: the API key was refused (Unauthorized.)",
        ),
        (
            answer_json(
                {
                    "type": "https://shlink.io/api/error/invalid-api-key",
                    "title": "Invalid API key",
                    "detail": "Provided API key does not exist or is invalid.",
                    "status": 401,
                },
                401,
            ),
            "Thing answered HTTP 401: the API key was refused "
            "(Provided API key does not exist or is invalid.)",
        ),
        (
            Answer(404, b"<html><body>Not found</body></html>", {"content-type": "text/html"}),
            "Thing answered HTTP 404 for {url}/api/things: nothing there; is {url} the "
            "address of its API?",
        ),
        (
            Answer(302, b"", {"location": "https://elsewhere.example/api"}),
            "Thing answered HTTP 302, a redirect to https://elsewhere.example/api: "
            "redirects are not followed; give the address it redirects to",
        ),
        (
            Answer(500, b"it broke\n", {"content-type": "text/plain"}),
            "Thing answered HTTP 500 for {url}/api/things (it broke)",
        ),
        (
            Answer(200, b"<!doctype html><p>Welcome", {"content-type": "text/html"}),
            "Thing answered {url}/api/things with something that is not JSON (text/html); "
            "is {url} the address of its API?",
        ),
    ],
)
async def test_what_goes_wrong_is_said_for_a_person(
    server: ApiServer, answer: Answer, message: str
) -> None:
    server.once = [answer]
    with pytest.raises(SourceError) as caught:
        await get(client(server.url))
    assert str(caught.value) == message.format(url=server.url)
    # Nothing is followed or asked again.
    assert len(server.asked) == 1


async def test_an_answer_over_the_cap_is_not_read(
    server: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http, "MAX_ANSWER_BYTES", 2**20)
    server.once = [answer_json({"padding": "x" * 2**20})]
    with pytest.raises(SourceError) as caught:
        await get(client(server.url))
    assert (
        str(caught.value)
        == f"Thing answered {server.url}/api/things with more than 1 MiB; kurz reads no more"
    )


async def test_an_api_that_does_not_answer_times_out(
    server: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http, "READ_TIMEOUT", 0.2)
    server.once = [Answer(hang=True)]
    with pytest.raises(SourceError) as caught:
        await get(client(server.url))
    assert str(caught.value) == (
        f"Thing did not answer {server.url}/api/things in time (5 s to connect, 0.2 s "
        "between reads, 120 s in all)"
    )


async def test_a_refused_connection_is_said_so() -> None:
    port = free_port()
    with pytest.raises(SourceError) as caught:
        await get(client(f"http://127.0.0.1:{port}"))
    assert str(caught.value) == (
        "Thing: could not connect to 127.0.0.1: connection refused (is anything listening there?)"
    )


@pytest.mark.parametrize(
    ("url", "allow_private", "why"),
    [
        ("http://127.0.0.1:9", False, "127.0.0.1 is a loopback address"),
        ("http://localhost:9", False, "localhost is a loopback name"),
        ("http://10.1.2.3", False, "10.1.2.3 is a private address"),
        ("http://[::1]:9", False, "::1 is a loopback address"),
        ("http://169.254.169.254", True, "169.254.169.254 is a cloud metadata address"),
    ],
)
async def test_private_and_metadata_addresses_are_refused(
    url: str, allow_private: bool, why: str
) -> None:
    with pytest.raises(SourceError) as caught:
        await get(client(url, allow_private=allow_private))
    assert str(caught.value) == (
        f"Thing: kurz does not connect there: {why} (an import reaches private addresses "
        "only with KURZ_IMPORT_ALLOW_PRIVATE, cloud metadata ones never)"
    )


def test_api_addresses_in_settings_are_checked_and_completed() -> None:
    assert KuttSettings(api_url="https://kutt.example/", api_key=SecretStr("k")).api_url == (
        "https://kutt.example/api/v2"
    )
    assert KuttSettings(api_url="https://kutt.example/api/v2", api_key=SecretStr("k")).api_url == (
        "https://kutt.example/api/v2"
    )
    assert ShlinkSettings(api_url=" https://s.example ", api_key=SecretStr("k")).api_url == (
        "https://s.example/rest/v3"
    )
    for bad in ("ftp://kutt.example", "https://user:pw@kutt.example", "kutt.example", ""):
        with pytest.raises(ValidationError):
            KuttSettings(api_url=bad, api_key=SecretStr("k"))
