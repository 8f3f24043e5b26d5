"""httpx's transport for kurz.imports.http: an httpcore pool whose connections go only
where kurz.webhooks.addresses.GuardedBackend allows. Imported when an API source first
asks, with httpx."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import httpcore
import httpx

from kurz.webhooks.addresses import GuardedBackend


class GuardedTransport(httpx.AsyncBaseTransport):
    """httpx's transport over an httpcore pool whose connections go only where
    `GuardedBackend` allows."""

    def __init__(
        self, *, allow_private: bool, backend: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            # Bitly allows five connections from one address; a source asks one at a time.
            max_connections=5,
            retries=0,
            network_backend=GuardedBackend(allow_private=allow_private, inner=backend),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        sent = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        answer = await self._pool.handle_async_request(sent)
        assert isinstance(answer.stream, AsyncIterable)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Stream(answer.stream),
            extensions=answer.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class _Stream(httpx.AsyncByteStream):
    def __init__(self, inner: AsyncIterable[bytes]) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        close = getattr(self._inner, "aclose", None)
        if close is not None:
            await close()
