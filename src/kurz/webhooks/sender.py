"""One delivery attempt over HTTP: a signed POST, its answer read up to a cap.

httpcore rather than httpx: it follows no redirect and reads no proxy from the
environment, and it takes a network backend, which is where every address connected
to is checked (kurz.webhooks.addresses.GuardedBackend).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpcore

from kurz.webhooks.addresses import GuardedBackend, Refused

# The answer's body is read up to this many bytes, then the connection is dropped: a
# receiver cannot make a worker read (or keep) more.
MAX_RESPONSE_BYTES = 64 * 1024
# What is kept of a failed answer's body, for the delivery's last_error.
KEPT_BODY = 300
USER_AGENT = "kurz-webhooks/1"


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt came to: a 2xx, or why not (an HTTP status, or none reached)."""

    ok: bool
    status: int | None = None
    error: str | None = None


class Sender:
    """POSTs deliveries through one connection pool per process."""

    def __init__(
        self,
        *,
        allow_private: bool,
        timeout: float,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self._pool = httpcore.AsyncConnectionPool(
            max_connections=100,
            keepalive_expiry=30.0,
            retries=0,
            network_backend=GuardedBackend(allow_private=allow_private, inner=backend),
        )

    async def post(self, url: str, *, headers: dict[str, str], body: bytes) -> Attempt:
        sent = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            **headers,
        }
        step = {"connect": min(5.0, self.timeout), "read": self.timeout, "write": self.timeout}
        kept = bytearray()
        try:
            # The whole attempt, too: a receiver that trickles a byte at a time never
            # trips the read timeout.
            async with asyncio.timeout(self.timeout):
                async with self._pool.stream(
                    "POST",
                    url,
                    headers=list(sent.items()),
                    content=body,
                    extensions={"timeout": {**step, "pool": self.timeout}},
                ) as response:
                    read = 0
                    async for chunk in response.aiter_stream():
                        read += len(chunk)
                        if len(kept) < KEPT_BODY:
                            kept += chunk[: KEPT_BODY - len(kept)]
                        if read >= self.max_response_bytes:
                            break
                    status = response.status
        except Refused as exc:
            return Attempt(False, None, f"refused: {exc}")
        except (TimeoutError, httpcore.TimeoutException):
            return Attempt(False, None, f"timed out after {self.timeout:g} s")
        except httpcore.ConnectError as exc:
            return Attempt(False, None, f"could not connect: {_said(exc)}")
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            return Attempt(False, None, f"connection failed: {_said(exc)}")
        except httpcore.UnsupportedProtocol as exc:
            return Attempt(False, None, f"unsupported URL: {exc}")
        if 200 <= status < 300:
            return Attempt(True, status)
        text = kept.decode("utf-8", "replace").strip()
        reason = f"HTTP {status}"
        if 300 <= status < 400:
            reason += " (redirects are not followed)"
        return Attempt(False, status, f"{reason}: {text}" if text else reason)

    async def close(self) -> None:
        await self._pool.aclose()


def _said(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
