"""uvicorn's httptools protocol with a bounded request head: two sizes and a deadline.

httptools buffers a header field of any size (copying it again with every read) and
uvicorn waits for a head forever; this subclass bounds both
(docs/decisions/0013-request-head-limits.md).

A read of at most one field's limit that arrives while no head is incomplete goes
straight to the parser: it cannot hold a field, or a head, past either limit. That
is every read of a cached redirect, and it costs a comparison before the parser and
a look at the parser's state after it. Any other read (a larger one, or one that
goes on a head left incomplete) is scanned line by line before the parser sees it,
and fed no further than the head's limit, so httptools never holds more than that.
"""

from __future__ import annotations

import asyncio
import json
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
# Whitespace around a field's value that a line may carry beyond the field's limit
# before the line is refused without waiting for its end.
SLACK = 64


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
    """A line of the head is longer than one field may be."""


def field_size(line: bytes | bytearray) -> int:
    """A field's size as httptools hands it over: its name and its value, trimmed.

    A line with no colon (the request line) counts whole."""
    name, colon, value = bytes(line).partition(b":")
    if not colon:
        return len(line)
    return len(name) + len(value.strip(b" \t"))


class _Head:
    """One connection's incomplete head: its count, its last partial line, its timer."""

    # One slotted attribute on the protocol rather than several: uvicorn's protocol
    # is near the number of instance attributes (30) up to which CPython shares a
    # dict's keys among instances and speeds up `self.` access in all its methods.
    __slots__ = (
        "fast_max", "lines", "max_field", "max_head", "partial", "pending", "refused", "seen",
        "step", "timeout", "timer",
    )  # fmt: skip

    def __init__(self, limits: HeadLimits) -> None:
        # A read of at most this many bytes goes straight to the parser: one field's
        # limit while no head is incomplete, and -1 (none) while one is.
        self.fast_max = -1
        self.pending = False
        # Bytes of the incomplete head so far (from the read in which it began).
        self.seen = 0
        # Its complete lines that were not blank, and the line still coming.
        self.lines = 0
        self.partial = bytearray()
        # The head's deadline; after a refusal, the end of the linger.
        self.timer: asyncio.TimerHandle | None = None
        self.refused = False
        self.max_field = limits.max_field_bytes
        self.max_head = limits.max_head_bytes
        # The most a read may bring that cannot hold a field, or a head, past its limit.
        self.step = min(self.max_field, self.max_head)
        self.timeout = limits.timeout

    def scan(self, data: bytes) -> int:
        """Checks the lines in `data`; the offset just past the head's end, or -1.

        Raises _FieldTooLarge for a line longer than a field may be, complete or not."""
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                self.partial += data[start:]
                if len(self.partial) > self.max_field and (
                    len(self.partial) > self.max_field + SLACK
                    or field_size(self.partial) > self.max_field
                ):
                    raise _FieldTooLarge
                return -1
            line = data[start:end]
            if self.partial:
                line = bytes(self.partial) + line
                self.partial.clear()
            if line.endswith(b"\r"):
                line = line[:-1]
            start = end + 1
            if not line:
                if self.lines:
                    return start
                continue  # a blank line before a request line, which HTTP allows
            self.lines += 1
            if len(line) > self.max_field and field_size(line) > self.max_field:
                raise _FieldTooLarge


class HeadLimitedProtocol(HttpToolsProtocol):
    """HTTP/1.1 for kurz: uvicorn's, with the head's size and time bounded."""

    limits: ClassVar[HeadLimits] = HeadLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head = _Head(self.limits)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that never sends a byte is held to the same deadline.
        self._begin_head(b"", lines=0)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._cancel_timer()

    def data_received(self, data: bytes) -> None:
        # uvicorn's data_received, with one comparison before the parser and one look
        # at its state after (ADR 0013: a call here would cost more than the limits).
        self._unset_keepalive_if_required()
        if len(data) > self._head.fast_max:
            self._receive_bounded(data)
            return
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._parse_stopped(exc)
            return
        cycle: RequestResponseCycle | None = self.cycle
        # A request read whole leaves its own cycle current and unanswered.
        if cycle is None or cycle.scope is not self.scope or cycle.response_complete:
            self._after_fast_read(data)

    def _after_fast_read(self, data: bytes) -> None:
        """After a read that did not complete a head: whether one is incomplete now."""
        if not self._head_open():
            if self.cycle.more_body:
                # The rest of a body the app answered without waiting for.
                return
            # Blank lines after a response: uvicorn's keep-alive timer stopped at them.
            self._begin_head(data, lines=0)
        else:
            self._begin_head(data, lines=1)

    def _head_open(self) -> bool:
        """Whether the parser has begun a message whose head is not complete yet."""
        cycle: RequestResponseCycle | None = self.cycle
        return cycle is None or cycle.scope is not self.scope

    def _begin_head(self, data: bytes, *, lines: int) -> None:
        """Starts counting and timing a head that began in `data` (its last read)."""
        head = self._head
        head.pending = True
        head.fast_max = -1
        head.seen = len(data)
        head.lines = lines
        head.partial[:] = data[data.rfind(b"\n") + 1 :]
        if head.timer is None:
            head.timer = self.loop.call_later(head.timeout, self._on_deadline)

    def _end_head(self) -> None:
        head = self._head
        head.pending = False
        head.fast_max = head.step
        head.seen = head.lines = 0
        head.partial.clear()
        self._cancel_timer()

    def _receive_bounded(self, data: bytes) -> None:
        """Feeds a read that might take a head past a limit, no further than the limit."""
        head = self._head
        while data and not head.refused:
            if not head.pending:
                # A body (its size is the app's business: KURZ_MAX_BODY_BYTES), fed a
                # field's limit at a time so that a head beginning in it is caught.
                piece, data = data[: head.step], data[head.step :]
                if not self._feed(piece):
                    return
                if self._head_open():
                    self._begin_head(piece, lines=1)
                continue
            room = head.max_head - head.seen
            if room <= 0:
                self._refuse(_too_large(f"The request head exceeds {head.max_head} bytes."))
                return
            piece = data[:room]
            try:
                end = head.scan(piece)
            except _FieldTooLarge:
                self._refuse(_too_large(f"A header field exceeds {head.max_field} bytes."))
                return
            if end >= 0:
                piece = piece[:end]
            data = data[len(piece) :]
            head.seen += len(piece)
            if not self._feed(piece):
                return
            if end >= 0 and not self._head_open():
                self._end_head()

    def _feed(self, data: bytes) -> bool:
        """Parses `data`; whether the connection reads on."""
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._parse_stopped(exc)
            return False
        return True

    def _parse_stopped(self, exc: Exception) -> None:
        """As uvicorn's data_received, with its 400 as problem+json."""
        if isinstance(exc, httptools.HttpParserUpgrade):
            # The head is complete; the connection is another protocol's now, or an
            # unsupported upgrade goes on as plain HTTP.
            self._end_head()
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        else:
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("The request is not valid HTTP/1.1.")

    def _responding(self) -> bool:
        """Whether a response is under way (no other answer may be written then)."""
        cycle: RequestResponseCycle | None = self.cycle
        return cycle is not None and not cycle.response_complete

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
        elif head.seen == 0:
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
        head.fast_max = -1
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
