"""If-Match parsing."""

from __future__ import annotations

import pytest

from kurz.errors import Problem
from kurz.links.preconditions import MAX_IF_MATCH_TAGS, parse_if_match
from kurz.links.queries import Versions


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        ('"3"', {3}),
        ('"3", "5"', {3, 5}),
        ('"3",,"5",', {3, 5}),
        ('W/"3", "4"', {4}),
    ],
)
def test_strong_tags_are_collected(header: str, allowed: set[int]) -> None:
    assert parse_if_match(header) == Versions(frozenset(allowed))


def test_weak_tags_are_well_formed_but_match_nothing() -> None:
    assert parse_if_match('W/"3", W/"4"') == Versions(frozenset(), weak_only=True)


def test_star_allows_any_version() -> None:
    assert parse_if_match(" * ").allowed is None


@pytest.mark.parametrize(
    "header",
    ["3", '"a"', '"1', '"9999999999"', "", " , ", "W/", "W/3", 'W/"a"', 'W/ "3"', '*, "1"'],
)
def test_malformed_headers_are_400(header: str) -> None:
    with pytest.raises(Problem) as caught:
        parse_if_match(header)
    assert caught.value.status == 400
    assert caught.value.slug == "malformed-if-match"


def test_the_list_is_bounded() -> None:
    most = ", ".join(f'"{n}"' for n in range(MAX_IF_MATCH_TAGS))
    assert len(parse_if_match(most).allowed or ()) == MAX_IF_MATCH_TAGS
    with pytest.raises(Problem) as caught:
        parse_if_match(most + ', "99"')
    assert caught.value.status == 400
    assert str(MAX_IF_MATCH_TAGS) in caught.value.detail
