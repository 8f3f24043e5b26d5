"""Reading the values of a CSV file's cells: times, counts, tags and short links
(docs/imports/csv.md)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

# A cell kurz's own CSV export began with an apostrophe, so that a spreadsheet shows
# it as text rather than running it (kurz.exports.service, docs/export.md).
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"\d+(\.\d+)?")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


class CellError(ValueError):
    """A cell the row cannot be read with: the row is reported, the rest goes on."""

    def __init__(self, reason: str, *, source_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.source_id = source_id


def when(text: str, *, column: str) -> datetime:
    """A time: ISO 8601 (a date alone is its midnight; no zone is UTC) or unix seconds.
    Eight digits are a date (20260101), as ISO 8601 has them, not seconds in 1970."""
    try:
        if _NUMBER.fullmatch(text) and len(text) != 8:
            return datetime.fromtimestamp(float(text), UTC)
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        raise CellError(
            f"{column} {text!r} is not a time kurz reads: ISO 8601 "
            "(2026-01-31, 2026-01-31T09:30:00Z) or unix seconds"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def count(text: str, *, column: str) -> int:
    """A count of clicks: a whole number, with thousands separators allowed (1,234)."""
    digits = text.replace(",", "").replace("_", "").replace(" ", "")
    if not digits.isascii() or not digits.isdigit():
        raise CellError(f"{column} {text!r} is not a whole number")
    return int(digits)


def tags(text: str, separators: str = ",;|") -> tuple[str, ...]:
    """The tags in one cell: one a line when the cell has line feeds (kurz's own export,
    where a tag may hold any of the separators), else split on `separators`. Blank
    tags and repeats are dropped."""
    split = "\n" if "\n" in text else "[" + re.escape(separators) + "]"
    pieces = re.split(split, text)
    return tuple(dict.fromkeys(piece.strip() for piece in pieces if piece.strip()))


def unformula(text: str) -> str:
    """A cell of kurz's CSV export as it was before the export guarded it against
    spreadsheets: without the apostrophe it put before `=`, `+`, `-`, `@`."""
    if text.startswith("'") and text[1:].startswith(_FORMULA):
        return text[1:]
    return text


def short_link(text: str, *, column: str) -> tuple[str, str]:
    """A short link's host (lower case) and path, with or without its scheme:
    `https://bit.ly/3xYz` and `bit.ly/3xYz` are ("bit.ly", "3xYz")."""
    rest = _SCHEME.sub("", text.strip(), count=1)
    host, _, path = rest.partition("/")
    path = path.split("?", 1)[0].split("#", 1)[0].strip("/")
    host = host.rsplit("@", 1)[-1].lower()
    if not host or not path:
        raise CellError(f"{column} {text!r} is not a short link (a host and a path)")
    return host, path
