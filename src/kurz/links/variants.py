"""A/B variants: a link's weighted URLs, and how a visit is given one (docs/variants.md).

A link's `variants` column holds them as JSON, with how one is chosen:
`{"choice": "random"|"sticky", "variants": [{"url": ..., "weight": ...}, ...]}`.
`Variants` compiles that once, when the link's Target is made, into cumulative
weights, so that a visit's choice is one draw and one bisection.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, Literal

import orjson

VariantChoice = Literal["random", "sticky"]
CHOICES: tuple[VariantChoice, ...] = ("random", "sticky")
MIN_VARIANTS = 2
MAX_VARIANTS = 10
# Enough for any split in parts per million; small enough that the weights' sum is
# far inside a float's exact integers, so a draw in [0, 1) scaled by it never rounds up
# to the sum.
MAX_WEIGHT = 1_000_000

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Variant:
    """One of a link's variants, ready to redirect to."""

    url: str
    weight: int
    # The redirect's headers for it, as Target.headers are for the link's url.
    headers: Headers = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Variants:
    """A link's variants, compiled for choosing one per visit."""

    items: tuple[Variant, ...]
    sticky: bool
    # Cumulative weights: variant i takes [bounds[i - 1], bounds[i]) of [0, total).
    bounds: tuple[int, ...] = field(repr=False, compare=False)

    @property
    def total(self) -> int:
        return self.bounds[-1]

    def pick(self, draw: float) -> Variant:
        """The variant a uniform `draw` in [0, 1) falls on, by weight."""
        return self.items[bisect_right(self.bounds, draw * self.bounds[-1])]

    def for_visitor(self, visitor: str, link_id: int) -> Variant:
        """The variant of `visitor` (the analytics visitor hash, which changes daily)
        on this link: the same all day, from any kurz process.

        The link's id is hashed in too, so that one visitor's variants on two links
        are independent, not always the first of each.
        """
        digest = hashlib.blake2b(f"{link_id}|{visitor}".encode(), digest_size=8).digest()
        return self.items[bisect_right(self.bounds, int.from_bytes(digest) % self.bounds[-1])]


def stored(pairs: Sequence[tuple[str, int]], choice: VariantChoice) -> str:
    """The variants column's JSON for (url, weight) pairs chosen by `choice`."""
    variants = [{"url": url, "weight": weight} for url, weight in pairs]
    return orjson.dumps({"choice": choice, "variants": variants}).decode()


def parse(text: str | None) -> tuple[list[tuple[str, int]], VariantChoice] | None:
    """The (url, weight) pairs and the choice the column holds; None for none."""
    if text is None:
        return None
    data: dict[str, Any] = orjson.loads(text)
    choice: VariantChoice = "sticky" if data.get("choice") == "sticky" else "random"
    return [(item["url"], int(item["weight"])) for item in data["variants"]], choice


def compile_variants(text: str | None, headers: Callable[[str], Headers]) -> Variants | None:
    """The column's variants, compiled; `headers` gives a URL's redirect headers."""
    found = parse(text)
    if found is None:
        return None
    pairs, choice = found
    items = tuple(Variant(url, weight, headers(url)) for url, weight in pairs)
    return Variants(items, choice == "sticky", tuple(accumulate(w for _, w in pairs)))
