"""Reading the JSON another system's API answers: a field of the type its docs give, or
`Malformed` saying which and why, which makes that item `Unreadable` (not the import)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from kurz.imports.sources import SourceError


class Malformed(Exception):
    """A field of an item that is not what the API documents; the message says which."""


def item(value: object, key: str | None = None) -> Mapping[str, Any]:
    """An object: an item of a list, or the field `key` of one."""
    if not isinstance(value, Mapping):
        if key is not None:
            raise Malformed(f"{key} is {_kind(value)}, not an object")
        raise Malformed(f"not an object but {_kind(value)}")
    return value


def text(found: Mapping[str, Any], key: str) -> str | None:
    """A string field; None when null, absent or blank."""
    value = found.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise Malformed(f"{key} is {_kind(value)}, not a string")
    return value


def required(found: Mapping[str, Any], key: str) -> str:
    """A string field that must be there and not blank."""
    value = text(found, key)
    if value is None:
        raise Malformed(f"{key} is missing")
    return value


def whole(found: Mapping[str, Any], key: str) -> int | None:
    """A whole number field, not negative; None when null or absent."""
    value = found.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise Malformed(f"{key} is {_kind(value)}, not a whole number")
    if value < 0:
        raise Malformed(f"{key} is negative ({value})")
    return int(value)


def flag(found: Mapping[str, Any], key: str) -> bool | None:
    value = found.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise Malformed(f"{key} is {_kind(value)}, not true or false")
    return value


def texts(found: Mapping[str, Any], key: str) -> list[str]:
    """A list of strings; empty when null or absent."""
    value = found.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value):
        raise Malformed(f"{key} is {_kind(value)}, not a list of strings")
    return value


def when(found: Mapping[str, Any], key: str) -> datetime | None:
    """An ISO 8601 time, in UTC; one without an offset is taken as UTC (Kutt on SQLite
    answers "2025-01-31 12:00:00", UTC)."""
    value = text(found, key)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Malformed(f"{key} is not an ISO 8601 time: {value!r}") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def day(found: Mapping[str, Any], key: str) -> date | None:
    """The day of an ISO 8601 time, as written: the source's day, whatever its offset."""
    value = text(found, key)
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).date()
    except ValueError:
        raise Malformed(f"{key} is not an ISO 8601 time: {value!r}") from None


def listing(answer: object, *path: str, name: str) -> list[Any]:
    """The list at `path` of a whole answer (a page of links): an answer without one is
    not the API the source reads, which fails the import (SourceError)."""
    found: object = answer
    for key in path:
        found = found.get(key) if isinstance(found, Mapping) else None
    if not isinstance(found, list):
        where = ".".join(path)
        raise SourceError(f"{name} answered without the list of links ({where}) it documents")
    return found


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
