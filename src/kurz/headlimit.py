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


class _Head:
    """One connection's count and timer for its current head."""

    # One slotted attribute on the protocol rather than several: uvicorn's protocol
    # is near the number of instance attributes (30) up to which CPython shares a
    # dict's keys among instances and speeds up `self.` access in all its methods.
    __slots__ = ("done", "max_field", "max_head", "refused", "seen", "timeout", "timer")

    def __init__(self, limits: HeadLimits) -> None:
        # Bytes received since the last message completed: a head's, then its body's.
        self.seen = 0
        # The scope of the last complete message (uvicorn's scope is the current
        # one); both are None before the first message.
        self.done: object = None
        # The head's deadline; after a refusal, the end of the linger.
        self.timer: asyncio.TimerHandle | None = None
        self.refused = False
        self.max_field = limits.max_field_bytes
        self.max_head = limits.max_head_bytes
        self.timeout = limits.timeout


class HeadLimitedProtocol(HttpToolsProtocol):
    """HTTP/1.1 for kurz: uvicorn's, with the head's size and time bounded."""

    limits: ClassVar[HeadLimits] = HeadLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head = _Head(self.limits)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that never sends a byte is held to the same deadline.
        self._head.timer = self.loop.call_later(self._head.timeout, self._on_deadline)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._cancel_timer()

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        head = self._head
        head.seen += len(data)
        if head.seen > head.max_head:
            head.seen -= len(data)
            self._receive_bounded(data)
            return
        # What _feed does, inline (see on_header).
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._parse_stopped(exc)
            return
        # A request read whole, the common case, leaves nothing to count or time.
        if head.seen or head.timer is not None:
            self._after_read()

    def _receive_bounded(self, data: bytes) -> None:
        """Feeds a read that might take a head past its limit, no further than the limit."""
        head = self._head
        if head.refused:
            return
        rest = memoryview(data)
        while rest:
            if self._in_body():
                # A body's size is the app's business (KURZ_MAX_BODY_BYTES).
                head.seen = 0
            room = head.max_head - head.seen
            if room <= 0:
                self._refuse(_too_large(f"The request head exceeds {head.max_head} bytes."))
                return
            piece, rest = rest[:room], rest[room:]
            head.seen += len(piece)
            if not self._feed(piece):
                return
        self._after_read()

    def _feed(self, data: bytes | memoryview) -> bool:
        """Parses `data`; whether the connection reads on."""
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._parse_stopped(exc)
            return False
        return True

    def _parse_stopped(self, exc: Exception) -> None:
        """As uvicorn's data_received, but a field past its limit gets 431."""
        if isinstance(exc, httptools.HttpParserUpgrade):
            # The head is complete; the connection is another protocol's now, or an
            # unsupported upgrade goes on as plain HTTP.
            self._cancel_timer()
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        elif isinstance(exc.__context__, _FieldTooLarge):
            detail = f"A header field exceeds {self._head.max_field} bytes."
            self._refuse(_too_large(detail))
        else:
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("The request is not valid HTTP/1.1.")

    def _in_body(self) -> bool:
        """Whether the current message's head is complete and its body is still coming."""
        return self._head.done is not self.scope and "method" in self.scope

    def _head_pending(self) -> bool:
        """Whether bytes of a head have arrived, and the head is not complete yet."""
        if self._head.done is self.scope:
            # Bytes that began no message (blank lines) count too.
            return self._head.seen > 0
        return "method" not in self.scope

    def _responding(self) -> bool:
        """Whether a response is under way (no other answer may be written then)."""
        cycle: RequestResponseCycle | None = self.cycle
        return cycle is not None and not cycle.response_complete

    def _after_read(self) -> None:
        """Arms the deadline while a head is incomplete, and disarms it once it is."""
        head = self._head
        if head.refused:
            return
        if self._head_pending():
            if head.timer is None:
                head.timer = self.loop.call_later(head.timeout, self._on_deadline)
        else:
            self._cancel_timer()

    def _cancel_timer(self) -> None:
        if self._head.timer is not None:
            self._head.timer.cancel()
            self._head.timer = None

    def _on_deadline(self) -> None:
        head = self._head
        head.timer = None
        if head.refused or self.transport.is_closing():
            self.transport.close()
        elif self._responding():
            # The next head is late behind a response under way: end after that one.
            self.cycle.keep_alive = False
            self.flow.pause_reading()
        elif head.seen == 0 and head.done is self.scope:
            # Nothing was asked, so nothing is answered.
            self.transport.close()
        else:
            detail = f"The request head did not arrive within {head.timeout:g} s."
            self._refuse(Problem(408, "request-timeout", "Request Timeout", detail))

    def send_400_response(self, msg: str) -> None:
        self._refuse(Problem(400, "bad-request", "Bad Request", msg))

    def _refuse(self, problem: Problem) -> None:
        """Answers with `problem` and closes, after reading (and dropping) for a moment."""
        self._cancel_timer()
        head = self._head
        head.refused = True
        # Every read now takes the bounded path, which drops it.
        head.seen = sys.maxsize
        if self._responding():
            # A pipelined request's response is under way: there is no room for another.
            self.transport.close()
            return
        body = json.dumps(problem.body()).encode()
        lines = [STATUS_LINE[problem.status]]
        for name, value in self.server_state.default_headers:
            lines += [name, b": ", value, b"\r\n"]
        lines += [
            b"content-type: ", PROBLEM_JSON.encode(), b"\r\n",
            b"content-length: ", str(len(body)).encode(), b"\r\n",
            b"connection: close\r\n\r\n",
        ]  # fmt: skip
        self.transport.write(b"".join(lines) + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
            head.timer = self.loop.call_later(LINGER, self.transport.close)
        else:
            self.transport.close()

    # The two parser callbacks below, and data_received, copy uvicorn 0.55's code
    # rather than call it: a call on every field and every request would cost the
    # redirect path more than all of the limits' own work (ADR 0013).

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) + len(value) > self._head.max_field:
            raise _FieldTooLarge
        name = name.lower()
        value = value.rstrip(b" \t")
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_message_complete(self) -> None:
        head = self._head
        head.seen = 0
        head.done = self.scope
        cycle = self.cycle
        if (self.parser.should_upgrade() and self._should_upgrade()) or cycle.response_complete:
            return
        cycle.more_body = False
        cycle.message_event.set()


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
