"""Cursors for keyset pagination: where a page ended, opaque to the client.

A listing ordered by id, newest first, asks for `id < cursor`: rows added meanwhile
never shift a later page, and a page costs the same however deep it is. A listing in
another order holds that order's key beside the id, which breaks its ties.

A cursor names its ordering, so that one made for another order (or, where the caller
puts them in the name, other filters) is refused rather than misread.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from kurz.errors import Problem, invalid

_MAX_ID = 2**63  # beyond a BIGINT: no row has it, and PostgreSQL would refuse it


@dataclass(frozen=True, slots=True)
class Position:
    """The last row of a page: its id, and its sort key when the order has one."""

    last_id: int
    key: str | None = None


def encode_position(ordering: str, position: Position) -> str:
    """A cursor for `position` in `ordering` (a name without a colon)."""
    raw = f"{ordering}:{position.last_id}"
    if position.key is not None:
        raw += f":{position.key}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_position(cursor: str, *orderings: str) -> Position:
    """The position a cursor from encode_position holds, if it was made for one of
    `orderings`; a 422 naming the `cursor` query parameter for anything else."""
    ordering, position = _decoded(cursor)
    if ordering not in orderings:
        raise invalid(
            "cursor", "was made for another sort or other filters; start again", location="query"
        )
    return position


def encode_cursor(last_id: int) -> str:
    """A cursor for a listing by id alone."""
    return encode_position("id", Position(last_id))


def decode_cursor(cursor: str) -> int:
    """The id a cursor from encode_cursor holds; a 422 naming the `cursor` query
    parameter for anything else."""
    ordering, position = _decoded(cursor)
    if ordering != "id" or position.key is not None:
        raise _not_a_cursor()
    return position.last_id


def _decoded(cursor: str) -> tuple[str, Position]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _not_a_cursor() from None
    ordering, _, rest = raw.partition(":")
    value, colon, key = rest.partition(":")
    if not value.isascii() or not value.isdigit() or len(value) > 19 or int(value) >= _MAX_ID:
        raise _not_a_cursor()
    return ordering, Position(int(value), key if colon else None)


def _not_a_cursor() -> Problem:
    return invalid("cursor", "is not a cursor this API returned", location="query")
