"""A search finds exactly what a filter in Python over the same links finds, in the
order asked, page after page, over both deployments."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kurz.links import search
from tests.integration.links.support import create
from tests.integration.links.test_search import found, in_order

_examples = itertools.count()

# Letters whose case folding differs from lowercasing (sharp s, final sigma, dotted I),
# what LIKE and FTS5 queries treat specially, and quotes.
ALPHABET = "aAbBsS\u00df\u03c3\u03c2\u03a3\u0130i%_\\\"'* -"
# What a pattern would take for a wildcard, an escape or the end of a string.
SPECIAL = "%_\\*\"'"
TAG_ALPHABET = "aAbB\u00df\u03c3\u0130%_'\"*"
texts = st.text(ALPHABET, min_size=1, max_size=8)


@dataclass(frozen=True)
class Made:
    code: str
    url: str
    title: str | None
    tags: tuple[str, ...]

    def matches(self, q: str) -> bool:
        folded = q.strip().casefold()
        fields = [self.code, self.url, self.title or "", *self.tags]
        return not folded or any(folded in field.casefold() for field in fields)


links = st.lists(
    st.fixed_dictionaries(
        {
            "og_title": st.none() | texts,
            "path": st.text("aAbBsS_-~", max_size=6),
            "tags": st.lists(st.text(TAG_ALPHABET, min_size=1, max_size=4), max_size=3),
        }
    ),
    min_size=1,
    max_size=7,
)


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    wanted=links,
    data=st.data(),
    sort=st.sampled_from(search.SORTS),
    limit=st.integers(1, 4),
    few=st.sampled_from([1, 1000]),
    most_places=st.sampled_from([0, 2000]),
)
async def test_a_search_finds_what_a_filter_in_python_finds(
    api: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    wanted: list[dict[str, Any]],
    data: st.DataObject,
    sort: str,
    limit: int,
    few: int,
    most_places: int,
) -> None:
    # Each example's links carry a tag of their own, which every search asks for.
    scope = f"example-{next(_examples)}"
    made: list[Made] = []
    for link in wanted:
        body = await create(
            api,
            url=f"https://e.com/{link['path']}",
            og_title=link["og_title"],
            tags=sorted({*link["tags"], scope}),
        )
        made.append(Made(body["code"], body["url"], body["og_title"], tuple(body["tags"])))

    # A query: anything, or a piece of something a link says.
    pieces = [f for m in made for f in (m.code, m.url, m.title, *m.tags) if f]
    piece = data.draw(st.sampled_from(pieces))
    start = data.draw(st.integers(0, len(piece) - 1))
    cased = data.draw(st.sampled_from([str.upper, str.lower, str.swapcase, str.casefold]))
    known = st.just(cased(piece[start : start + data.draw(st.integers(1, 5))]))
    q = data.draw(st.one_of(known, texts, st.text(SPECIAL, min_size=1, max_size=3)))
    tags = data.draw(st.lists(st.sampled_from([t for m in made for t in m.tags]), max_size=2))
    # SQLite finds many matches by code walking the index, few by sorting them.
    monkeypatch.setattr(search, "_FEW", few)
    # SQLite finds a short query through the index unless it is common, reading the
    # links in order otherwise.
    monkeypatch.setattr(search, "_MOST_PLACES", most_places)

    expected = [m.code for m in made if m.matches(q) and {*tags, scope} <= set(m.tags)]
    got = await found(api, q=q, tag=[scope, *tags], sort=sort, limit=limit)
    assert_in_order(got, expected, sort)


def assert_in_order(got: Sequence[str], expected: list[str], sort: str) -> None:
    if sort == "code":
        # By code, the order is the database's collation's: the same links, each once,
        # sorted by some order of the codes.
        assert sorted(got) == sorted(expected)
    else:
        assert list(got) == in_order(expected, sort)
