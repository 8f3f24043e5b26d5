"""The HTTP client of the sources that read another system's API (Bitly, Kutt, Shlink).

Every request is a server-side request: the host is checked before connecting, and
every address connected to (kurz.webhooks.addresses.GuardedBackend), so that an import
cannot be pointed at the server's own network unless `Opening.allow_private` says so.
No redirect is followed, no proxy is read from the environment, each step has a
timeout, and an answer is read up to a cap. A 429 or 503 is asked again after what
Retry-After says, a bounded number of times. Whatever goes wrong ends as a
`SourceError` (an `ApiError` for an HTTP status) that says why, for a person.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpcore

from kurz import __version__
from kurz.imports.sources import SourceError
from kurz.webhooks.addresses import Refused, check_host, check_url

if TYPE_CHECKING:
    import httpx

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
# A whole request, however slowly its answer trickles in (the read timeout is per chunk).
REQUEST_DEADLINE = 120.0
MAX_ANSWER_BYTES = 16 * 1024 * 1024
# A 429 or 503 is asked again this many times; without Retry-After after 2, 4, 8, 16
# and 32 seconds (a minute in all: Bitly's shortest window is a minute).
RETRIES = 5
# A Retry-After longer than this is not waited for: the import fails saying when to
# try again, rather than holding a worker for an hour.
MAX_WAIT = 300.0
USER_AGENT = f"kurz-import/{__version__}"
# Kept of an error answer's own words, for the message.
KEPT_WORDS = 200

Sleep = Callable[[float], Awaitable[None]]


class ApiError(SourceError):
    """The API answered with an HTTP status that is not a success."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


def checked_url(url: str) -> str:
    """`url` (an API's address, from settings) if it can be one: absolute http(s), a
    host, no credentials, no fragment; without its trailing slash. A ValueError says
    what is wrong (pydantic turns it into the 422)."""
    return check_url(url.strip()).rstrip("/")


class ApiClient:
    """GETs JSON from one API, as `name` ("Bitly") for the messages it fails with.

    `credential` names what `headers` carry ("token", "API key") for a 401's message.
    """

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        headers: Mapping[str, str],
        allow_private: bool,
        credential: str = "token",
        sleep: Sleep = asyncio.sleep,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        # httpx when a source first asks (not when kurz starts: importing it imports its
        # command line's rich and pygments too, docs/benchmarks.md "Start-up").
        import httpx

        from kurz.imports.transport import GuardedTransport

        self.name = name
        self.base_url = base_url.rstrip("/")
        self.credential = credential
        self.allow_private = allow_private
        self._sleep = sleep
        self._client = httpx.AsyncClient(
            transport=GuardedTransport(allow_private=allow_private, backend=backend),
            headers={"accept": "application/json", "user-agent": USER_AGENT, **headers},
            timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
            follow_redirects=False,
            trust_env=False,
        )

    async def get(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        """The JSON answer to GET `path` (under the base URL), asked again on a 429 or
        503 as Retry-After says. Raises ApiError for a status that is not a success
        (after the retries), SourceError for the rest."""
        url = self.base_url + path
        for attempt in range(RETRIES + 1):
            status, headers, body = await self._fetch(url, params or {})
            if status not in (429, 503) or attempt == RETRIES:
                break
            wait = retry_after(headers.get("retry-after"), default=2.0 ** (attempt + 1))
            if wait > MAX_WAIT:
                raise ApiError(
                    f"{self.name} answered HTTP {status} ({_why(status)}) and asks to wait "
                    f"{wait:,.0f} s before asking again; run the import again later",
                    status=status,
                )
            await self._sleep(wait)
        if not 200 <= status < 300:
            raise ApiError(self._failed(status, headers, body, url), status=status)
        try:
            return json.loads(body)
        except ValueError:
            kind = headers.get("content-type", "no content type")
            raise SourceError(
                f"{self.name} answered {url} with something that is not JSON ({kind}); "
                f"is {self.base_url} the address of its API?"
            ) from None

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _fetch(
        self, url: str, params: Mapping[str, str | int]
    ) -> tuple[int, httpx.Headers, bytes]:
        import httpx

        host = urlsplit(url).hostname or ""
        try:
            check_host(host, allow_private=self.allow_private)
            # The whole request, too: an answer that trickles a byte at a time never
            # trips the read timeout.
            async with asyncio.timeout(REQUEST_DEADLINE):
                async with self._client.stream("GET", url, params=params) as response:
                    return response.status_code, response.headers, await self._read(response)
        except Refused as exc:
            raise SourceError(
                f"{self.name}: kurz does not connect there: {exc} (an import reaches private "
                "addresses only with KURZ_IMPORT_ALLOW_PRIVATE, cloud metadata ones never)"
            ) from None
        except (TimeoutError, httpx.TimeoutException, httpcore.TimeoutException):
            raise SourceError(
                f"{self.name} did not answer {url} in time ({CONNECT_TIMEOUT:g} s to connect, "
                f"{READ_TIMEOUT:g} s between reads, {REQUEST_DEADLINE:g} s in all)"
            ) from None
        except (httpx.ConnectError, httpcore.ConnectError) as exc:
            raise SourceError(f"{self.name}: could not connect to {host}: {_said(exc)}") from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, httpcore.UnsupportedProtocol) as exc:
            raise SourceError(f"{self.name}: {url} is not a URL kurz can ask: {exc}") from None
        except (httpx.HTTPError, httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise SourceError(
                f"{self.name}: the connection to {host} failed: {_said(exc)}"
            ) from None

    async def _read(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
            raise self._too_big(str(response.url))
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_ANSWER_BYTES:
                raise self._too_big(str(response.url))
        return bytes(body)

    def _too_big(self, url: str) -> SourceError:
        return SourceError(
            f"{self.name} answered {url} with more than {MAX_ANSWER_BYTES // 2**20} MiB; "
            "kurz reads no more"
        )

    def _failed(self, status: int, headers: httpx.Headers, body: bytes, url: str) -> str:
        said = _words(body)
        tail = f" ({said})" if said else ""
        if status in (401, 403):
            return f"{self.name} answered HTTP {status}: the {self.credential} was refused{tail}"
        if status == 404:
            return (
                f"{self.name} answered HTTP 404 for {url}: nothing there; is {self.base_url} "
                f"the address of its API?{tail}"
            )
        if 300 <= status < 400:
            where = headers.get("location", "elsewhere")
            return (
                f"{self.name} answered HTTP {status}, a redirect to {where}: redirects are "
                "not followed; give the address it redirects to"
            )
        if status in (429, 503):
            return (
                f"{self.name} still answered HTTP {status} ({_why(status)}) after "
                f"{RETRIES} retries; run the import again later{tail}"
            )
        return f"{self.name} answered HTTP {status} for {url}{tail}"


def retry_after(value: str | None, *, default: float, now: datetime | None = None) -> float:
    """The seconds a Retry-After header asks to wait (seconds, or an HTTP date);
    `default` without one, or with one that is neither."""
    if value is None:
        return default
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _why(status: int) -> str:
    return "too many requests" if status == 429 else "unavailable"


def _words(body: bytes) -> str:
    """What an error answer says of itself: its JSON's message, or its text (not HTML)."""
    try:
        found = json.loads(body)
    except ValueError:
        found = None
    if isinstance(found, dict):
        # Bitly: message and description; Kutt: error; Shlink (problem+json): detail.
        parts = _texts(found.get(key) for key in ("message", "description", "error", "detail"))
        text = ": ".join(dict.fromkeys(parts)) or " ".join(_texts([found.get("title")]))
    elif isinstance(found, str):
        text = found
    elif found is None and body.lstrip()[:1] != b"<":
        text = body.decode("utf-8", "replace")
    else:
        text = ""
    text = " ".join(text.split())
    return text if len(text) <= KEPT_WORDS else text[: KEPT_WORDS - 1] + "…"


def _texts(values: Iterable[object]) -> list[str]:
    return [value.strip() for value in values if isinstance(value, str) and value.strip()]


def _said(exc: BaseException) -> str:
    """Why a connection failed, in words: `connection refused` rather than errno 111."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused (is anything listening there?)"
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__
