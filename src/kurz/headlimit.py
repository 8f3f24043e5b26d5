"""uvicorn's httptools protocol with a bounded request head: two sizes and a deadline.

httptools buffers a header field of any size (copying it again with every read) and
uvicorn waits for a head forever; this subclass counts a head's bytes before the
parser sees them and times it (docs/decisions/0013-request-head-limits.md).
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from kurz.config import Settings
from kurz.errors import PROBLEM_JSON, Problem

# How long a refused client may go on sending (read and dropped) after the answer:
# closing on unread bytes would reset the connection, and the client could lose the
# answer before it reads it.
LINGER = 2.0


@dataclass(frozen=True)
class HeadLimits:
    """What a client may send before its request starts, and how slowly."""

    max_field_bytes: int = 16 * 1024
    max_head_bytes: int = 64 * 1024
    timeout: float = 10.0

    @classmethod
    def of(cls, settings: Settings) -> HeadLimits:
        return cls(settings.max_header_field_bytes, settings.max_head_bytes, settings.head_timeout)


class _FieldTooLarge(Exception):
    """Raised from a parser callback: the only way to stop httptools mid-read."""


class HeadLimitedProtocol(HttpToolsProtocol):
    """HTTP/1.1 for kurz: uvicorn's, with the head's size and time bounded."""

    limits: ClassVar[HeadLimits] = HeadLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_field = self.limits.max_field_bytes
        self._max_head = self.limits.max_head_bytes
        # Bytes received since the last message completed: a head's, then its body's.
        self._seen = 0
        # The scope of the last complete message (uvicorn's scope is the current one).
        self._done: object = None
        # The head's deadline; after a refusal, the end of the linger.
        self._timer: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that never sends a byte is held to the same deadline.
        self._timer = self.loop.call_later(self.limits.timeout, self._on_deadline)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._cancel_timer()

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        self._seen += len(data)
        if self._seen > self._max_head:
            self._seen -= len(data)
            self._receive_bounded(data)
            return
        self._feed(data)
        # A request read whole, the common case, leaves nothing to count or time.
        if self._seen or self._timer is not None:
            self._after_read()

    def _receive_bounded(self, data: bytes) -> None:
        """Feeds a read that might take a head past its limit, no further than the limit."""
        if self._refused:
            return
        rest = memoryview(data)
        while rest:
            if self._in_body():
                # A body's size is the app's business (KURZ_MAX_BODY_BYTES).
                self._seen = 0
            room = self._max_head - self._seen
            if room <= 0:
                self._refuse(_too_large(f"The request head exceeds {self._max_head} bytes."))
                return
            piece, rest = rest[:room], rest[room:]
            self._seen += len(piece)
            if not self._feed(piece):
                return
        self._after_read()

    def _feed(self, data: bytes | memoryview) -> bool:
        """uvicorn's data_received, but a field past its limit gets 431; whether to go on."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _FieldTooLarge):
                detail = f"A header field exceeds {self._max_field} bytes."
                self._refuse(_too_large(detail))
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("The request is not valid HTTP/1.1.")
            return False
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return False
        return True

    # Before the first message, uvicorn's scope is None, like _done: "no message open".

    def _in_body(self) -> bool:
        """Whether the current message's head is complete and its body is still coming."""
        return self._done is not self.scope and "method" in self.scope

    def _head_pending(self) -> bool:
        """Whether bytes of a head have arrived, and the head is not complete yet."""
        if self._done is self.scope:
            # Bytes that began no message (blank lines) count too.
            return self._seen > 0
        return "method" not in self.scope

    def _responding(self) -> bool:
        """Whether a response is under way (no other answer may be written then)."""
        cycle: RequestResponseCycle | None = self.cycle
        return cycle is not None and not cycle.response_complete

    def _after_read(self) -> None:
        """Arms the deadline while a head is incomplete, and disarms it once it is."""
        if self._refused:
            return
        if self._head_pending():
            if self._timer is None:
                self._timer = self.loop.call_later(self.limits.timeout, self._on_deadline)
        else:
            self._cancel_timer()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_deadline(self) -> None:
        self._timer = None
        if self._refused or self.transport.is_closing():
            self.transport.close()
        elif self._responding():
            # The next head is late behind a response under way: end after that one.
            self.cycle.keep_alive = False
            self.flow.pause_reading()
        elif self._seen == 0 and self._done is self.scope:
            # Nothing was asked, so nothing is answered.
            self.transport.close()
        else:
            detail = f"The request head did not arrive within {self.limits.timeout:g} s."
            self._refuse(Problem(408, "request-timeout", "Request Timeout", detail))

    def send_400_response(self, msg: str) -> None:
        self._refuse(Problem(400, "bad-request", "Bad Request", msg))

    def _refuse(self, problem: Problem) -> None:
        """Answers with `problem` and closes, after reading (and dropping) for a moment."""
        self._cancel_timer()
        self._refused = True
        # Every read now takes the bounded path, which drops it.
        self._seen = sys.maxsize
        if self._responding():
            # A pipelined request's response is under way: there is no room for another.
            self.transport.close()
            return
        body = json.dumps(problem.body()).encode()
        head = [STATUS_LINE[problem.status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: ", PROBLEM_JSON.encode(), b"\r\n",
            b"content-length: ", str(len(body)).encode(), b"\r\n",
            b"connection: close\r\n\r\n",
        ]  # fmt: skip
        self.transport.write(b"".join(head) + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self._timer = self.loop.call_later(LINGER, self.transport.close)
        else:
            self.transport.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) + len(value) > self._max_field:
            raise _FieldTooLarge
        super().on_header(name, value)

    def on_message_complete(self) -> None:
        self._seen = 0
        self._done = self.scope
        super().on_message_complete()


def _too_large(detail: str) -> Problem:
    return Problem(
        431, "request-header-fields-too-large", "Request Header Fields Too Large", detail
    )


def protocol_class(limits: HeadLimits) -> type[HeadLimitedProtocol]:
    """The protocol class `kurz serve` gives uvicorn (`http=`), bound to `limits`."""

    class Limited(HeadLimitedProtocol):
        pass

    Limited.limits = limits
    return Limited
