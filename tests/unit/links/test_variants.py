"""A/B variants: stored as JSON, compiled once, and chosen by weight."""

from __future__ import annotations

from collections import Counter
from random import Random

from hypothesis import given
from hypothesis import strategies as st

from kurz.links.target import Target
from kurz.links.variants import MAX_VARIANTS, MAX_WEIGHT, parse, stored

A, B, C = "https://a.example/", "https://b.example/", "https://c.example/"


def link(pairs: list[tuple[str, int]], choice: str = "random", **fields: object) -> Target:
    values: dict[str, object] = {
        "link_id": 1,
        "version": 1,
        "status": 302,
        "url": "https://example.com/",
        "forward_query": False,
        "starts_at": None,
        "expires_at": None,
        "max_visits": None,
        "variants_json": stored(pairs, "sticky" if choice == "sticky" else "random"),
    }
    values.update(fields)
    return Target(**values)  # type: ignore[arg-type]


def test_the_column_round_trips() -> None:
    pairs = [(A, 70), (B, 30)]
    assert parse(stored(pairs, "sticky")) == (pairs, "sticky")
    assert parse(None) is None


def test_a_link_with_variants_is_not_plain_and_has_headers_per_variant() -> None:
    target = link([(A, 1), (B, 1)], status=301)
    assert not target.plain
    assert target.variants is not None
    first, second = target.variants.items
    assert target.headers_for(b"", first)[0] == (b"location", A.encode())
    assert target.headers_for(b"", second)[0] == (b"location", B.encode())
    # As the link's own url, a permanent redirect's variant is cached briefly.
    assert target.headers_for(b"", second)[1:] == target.headers[1:]
    assert target.headers_for(b"") == target.headers


def test_the_visitors_query_goes_to_the_variant_when_the_link_forwards_it() -> None:
    target = link([(A + "?x=1", 1), (B, 1)], forward_query=True)
    assert target.variants is not None
    first = target.variants.items[0]
    assert target.headers_for(b"utm=2", first)[0] == (b"location", f"{A}?x=1&utm=2".encode())


def test_a_draw_falls_on_the_variant_whose_share_of_the_total_holds_it() -> None:
    target = link([(A, 7), (B, 2), (C, 1)])
    variants = target.variants
    assert variants is not None
    picks = [variants.pick(draw).url for draw in (0.0, 0.6999, 0.7, 0.8999, 0.9, 0.999999)]
    assert picks == [A, A, B, B, C, C]


@given(
    st.lists(st.integers(1, MAX_WEIGHT), min_size=2, max_size=MAX_VARIANTS),
    st.floats(0.0, 1.0, exclude_max=True),
)
def test_every_draw_gives_a_variant(weights: list[int], draw: float) -> None:
    target = link([(f"https://{i}.example/", w) for i, w in enumerate(weights)])
    assert target.variants is not None
    assert target.variants.pick(draw) in target.variants.items


def chi_square(counts: Counter[str], shares: dict[str, float]) -> float:
    n = sum(counts.values())
    return sum((counts[url] - n * share) ** 2 / (n * share) for url, share in shares.items())


# The 99.9th percentile of chi-square with 2 degrees of freedom.
CHI2_2DF_999 = 13.82


def test_random_choices_follow_the_weights() -> None:
    target = link([(A, 70), (B, 20), (C, 10)])
    variants = target.variants
    assert variants is not None
    draw = Random(2026).random
    counts = Counter(variants.pick(draw()).url for _ in range(100_000))
    assert chi_square(counts, {A: 0.7, B: 0.2, C: 0.1}) < CHI2_2DF_999


def test_sticky_choices_are_one_per_visitor_and_follow_the_weights() -> None:
    target = link([(A, 70), (B, 20), (C, 10)], "sticky")
    variants = target.variants
    assert variants is not None
    assert variants.sticky
    visitors = [f"{i:016x}" for i in range(30_000)]
    chosen = [variants.for_visitor(visitor, 1).url for visitor in visitors]
    assert chosen == [variants.for_visitor(visitor, 1).url for visitor in visitors]
    assert chi_square(Counter(chosen), {A: 0.7, B: 0.2, C: 0.1}) < CHI2_2DF_999
    # Another link's choices are not the same ones: the link is hashed in.
    other = [variants.for_visitor(visitor, 2).url for visitor in visitors]
    assert other != chosen
