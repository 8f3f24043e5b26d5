"""Targeting rules compiled once, when a link's Target is made, and asked per visit.

Each condition becomes one small function of the visit's Traits; a rule is its
conditions' functions with all/any. `pick` answers the destination of the first rule
that matches: 1 for the first rule, 2 for the second..., as Target numbers its URLs
(0 is the link's own `url`).

Compiled from the stored JSON (which kurz.links.conditions validated on write), not
through the models: a load from the cache tiers stays cheap, and a condition this
version does not know (written by a newer kurz during a rolling upgrade) never
matches instead of failing the redirect.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from kurz.links.traits import Traits, speaks

Check = Callable[[Traits], bool]


def _never(_traits: Traits) -> bool:
    return False


def _device(values: frozenset[str]) -> Check:
    return lambda traits: traits.kind()[0] in values


def _os(values: frozenset[str]) -> Check:
    return lambda traits: traits.kind()[1] in values


def _browser(values: frozenset[str]) -> Check:
    return lambda traits: traits.kind()[2] in values


def _language(ranges: tuple[str, ...]) -> Check:
    return lambda traits: speaks(traits.languages(), ranges)


def _country(values: frozenset[str]) -> Check:
    return lambda traits: traits.place()[0] in values


def _city(values: frozenset[str]) -> Check:
    def check(traits: Traits) -> bool:
        city = traits.place()[1]
        return city is not None and city.casefold() in values

    return check


def _query(param: str, equals: str | None) -> Check:
    if equals is None:
        return lambda traits: param in traits.query()
    return lambda traits: equals in traits.query().get(param, ())


def _time(start: float, end: float) -> Check:
    return lambda traits: start <= traits.at < end


def _moment(value: str | None, default: float) -> float:
    return default if value is None else datetime.fromisoformat(value).timestamp()


def condition(spec: dict[str, Any]) -> Check:
    """The check of one stored condition."""
    kind = spec.get("type")
    values = spec.get("in") or ()
    if kind == "device":
        return _device(frozenset(values))
    if kind == "os":
        return _os(frozenset(value.casefold() for value in values))
    if kind == "browser":
        return _browser(frozenset(value.casefold() for value in values))
    if kind == "language":
        return _language(tuple(value.lower() for value in values))
    if kind == "country":
        return _country(frozenset(values))
    if kind == "city":
        return _city(frozenset(value.casefold() for value in values))
    if kind == "query":
        return _query(spec["param"], spec.get("equals"))
    if kind == "time":
        return _time(
            _moment(spec.get("from"), float("-inf")), _moment(spec.get("until"), float("inf"))
        )
    return _never


class Routes:
    """A link's targeting rules, compiled: which destination a visit goes to."""

    __slots__ = ("_rules", "urls")

    def __init__(self, stored: str) -> None:
        specs: list[dict[str, Any]] = orjson.loads(stored)
        # The rules' URLs, in order: destinations 1, 2, ...
        self.urls = tuple(str(spec["url"]) for spec in specs)
        self._rules = tuple(
            (
                destination,
                spec.get("match", "all") == "all",
                tuple(condition(each) for each in spec["conditions"]),
            )
            for destination, spec in enumerate(specs, start=1)
        )

    def __len__(self) -> int:
        return len(self._rules)

    def pick(self, traits: Traits) -> int:
        """The destination of the first rule `traits` matches; 0 (the link's own URL)
        when none does."""
        for destination, every, checks in self._rules:
            if every:
                for check in checks:
                    if not check(traits):
                        break
                else:
                    return destination
            else:
                for check in checks:
                    if check(traits):
                        return destination
        return 0
