"""The click journal's files: segments of records, as written and as read back.

A segment is a file of fixed size, allocated in full when it is made and mapped into
memory. It begins with a header; records follow back to back; the rest is zeros, and
a zero where a record would begin ends the segment. Each byte is written once.

A record begins with its kind and ends with MARK, written last, so that a record
the process was writing when it died (torn) is told from a whole one:

- a click: kind, link id, time, template number, visitor, MARK (one `pack_into`,
  which writes its fields in order);
- any other record: kind, payload length, a JSON payload, CRC-32 of all before it,
  MARK. A template gives a number to a click's fields other than link, time and
  visitor (the referrer host, browser, OS, device, bot, country, and those after the
  visitor: the city, the variant), which most clicks share; a batch says which clicks a
  batch id took; a commit that it was written. A template of fewer fields (an older
  kurz's) gives the fields added since as None.
"""

from __future__ import annotations

import json
import struct
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kurz.analytics.events import _VISITOR_BYTES, ClickEvent, complete

MAGIC = b"KURZCJ01"
# The magic, the journal's id, the database's fingerprint, the machine's boot, the
# segment's number, the sequence number of its first click.
HEADER = struct.Struct("<8s16s16s16sQQ")
START = 128
END, CLICK, TEMPLATE, BATCH, COMMIT = 0, 1, 2, 3, 4
MARK = 0xC1
# A visitor is the hex of a keyed hash of _VISITOR_BYTES bytes: always this long.
VISITOR_CHARS = 2 * _VISITOR_BYTES
CLICK_RECORD = struct.Struct(f"<BqdI{VISITOR_CHARS}sB")
_HEAD = struct.Struct("<BI")
_TAIL = struct.Struct("<IB")
# The fields of a click a template stands for: event[2:8] + event[9:].
Template = tuple[Any, ...]


def template_key(event: ClickEvent) -> Template:
    """The fields of `event` its template stands for (ClickJournal.append inlines it)."""
    return event[2:8] + event[9:]


def record(kind: int, payload: object) -> bytes:
    """A record other than a click, whole."""
    data = json.dumps(payload, separators=(",", ":")).encode()
    body = _HEAD.pack(kind, len(data)) + data
    return body + _TAIL.pack(zlib.crc32(body), MARK)


def header(journal: bytes, fingerprint: bytes, number: int, first: int) -> bytes:
    return HEADER.pack(MAGIC, journal, fingerprint, BOOT, number, first)


def boot() -> bytes:
    """Which boot of the machine this is (Linux's boot id); zeros where unknown, and
    then a restart goes unnoticed."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as file:
            return uuid.UUID(file.read().strip()).bytes
    except (OSError, ValueError):
        return bytes(16)


BOOT = boot()


@dataclass
class Segment:
    """What one segment holds."""

    number: int
    # The sequence number of clicks[0]: clicks are numbered across a journal's segments.
    first: int
    clicks: list[ClickEvent] = field(default_factory=list)
    # Batch id -> the clicks it took, [first, end) by sequence number.
    batches: dict[str, tuple[int, int]] = field(default_factory=dict)
    committed: set[str] = field(default_factory=set)
    # Where its records end, and whether on one that was not whole (its writer died
    # writing it).
    end: int = START
    torn: bool = False


def read(data: bytes | memoryview, journal: bytes, fingerprint: bytes) -> Segment | None:
    """The records of a segment of `journal` for the database `fingerprint`; None when
    it is none (made but never begun, or another's)."""
    if len(data) < START:
        return None
    magic, owner, database, _boot, number, first = HEADER.unpack_from(data)
    if magic != MAGIC or owner != journal or database != fingerprint:
        return None
    segment = Segment(number, first)
    templates: dict[int, Template] = {}
    for kind, value in _records(data, segment):
        if kind == CLICK:
            link_id, at, template, visitor = value
            fields = templates.get(template)
            if fields is None:
                segment.torn = True
                break
            segment.clicks.append(complete((link_id, at, *fields[:6], visitor, *fields[6:])))
        elif kind == TEMPLATE:
            template, fields = value
            templates[template] = tuple(fields)
        elif kind == BATCH:
            ident, start, end = value
            segment.batches[ident] = (start, end)
        elif kind == COMMIT:
            segment.committed.add(value)
    return segment


def _records(data: bytes | memoryview, segment: Segment) -> Iterator[tuple[int, Any]]:
    at, size = START, len(data)
    while at < size:
        segment.end = at
        kind = data[at]
        if kind == END:
            return
        if kind == CLICK:
            if at + CLICK_RECORD.size > size:
                break
            _, link_id, time, number, visitor, mark = CLICK_RECORD.unpack_from(data, at)
            if mark != MARK:
                break
            try:
                text = visitor.rstrip(b"\0").decode("ascii")
            except UnicodeDecodeError:
                break
            yield kind, (link_id, time, number, text)
            at += CLICK_RECORD.size
            continue
        if kind not in (TEMPLATE, BATCH, COMMIT) or at + _HEAD.size > size:
            break
        _, length = _HEAD.unpack_from(data, at)
        end = at + _HEAD.size + length
        if end + _TAIL.size > size:
            break
        check, mark = _TAIL.unpack_from(data, end)
        if mark != MARK or check != zlib.crc32(data[at:end]):
            break
        try:
            value = json.loads(bytes(data[at + _HEAD.size : end]))
        except ValueError:
            break
        yield kind, value
        at = end + _TAIL.size
    else:
        segment.end = at
        return
    segment.torn = True
