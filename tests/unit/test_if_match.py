"""If-Match parsing and cursors."""

from __future__ import annotations

import pytest

from kurz.errors import Problem
from kurz.links.service import Versions, decode_cursor, encode_cursor
from kurz.links.views import parse_if_match


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        ('"3"', {3}),
        ('"3", "5"', {3, 5}),
        ('W/"3"', set()),
        ('W/"3", "4"', {4}),
    ],
)
def test_strong_tags_are_collected(header: str, allowed: set[int]) -> None:
    assert parse_if_match(header) == Versions(frozenset(allowed))


def test_star_allows_any_version() -> None:
    assert parse_if_match(" * ").allowed is None


@pytest.mark.parametrize("header", ["3", '"a"', '"1', '"9999999999"', ""])
def test_malformed_headers_are_400(header: str) -> None:
    with pytest.raises(Problem) as caught:
        parse_if_match(header)
    assert caught.value.status == 400


@pytest.mark.parametrize("link_id", [1, 42, 2**62])
def test_cursor_round_trips(link_id: int) -> None:
    assert decode_cursor(encode_cursor(link_id)) == link_id
