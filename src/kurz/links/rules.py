"""The rules a visit of a link must pass: one verdict, asked by every way in.

A rule is added here once (docs/architecture.md, "A new redirect rule"): the fast
path, the slow path and gRPC ResolveLink all ask `verdict`, so none can skip it.
Each rule says whether a link has it at all (`applies`, decided once when the link's
Target is made), so that a link with none is answered without asking any.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from kurz.errors import Problem

if TYPE_CHECKING:
    from kurz.links.target import Target


@dataclass(frozen=True, slots=True)
class Visit:
    """What a rule may know of one visit."""

    # When, on the server's clock (Unix seconds).
    at: float


@dataclass(frozen=True, slots=True)
class Rule:
    """One condition a link may carry, and the refusal when a visit fails it."""

    name: str
    applies: Callable[[Target], bool]
    check: Callable[[Target, Visit], Problem | None]


def missing() -> Problem:
    return Problem(404, "link-not-found", "Link not found", "This short link does not exist.")


def used_up() -> Problem:
    return Problem(
        410, "link-visits-exhausted", "Link used up", "This short link has reached its visit limit."
    )


def _not_started(target: Target, visit: Visit) -> Problem | None:
    assert target.starts_at is not None
    if visit.at >= target.starts_at:
        return None
    starts = datetime.fromtimestamp(target.starts_at, UTC).isoformat().replace("+00:00", "Z")
    return Problem(
        410,
        "link-not-active",
        "Link not active yet",
        f"This short link is active from {starts}.",
    )


def _expired(target: Target, visit: Visit) -> Problem | None:
    assert target.expires_at is not None
    if visit.at < target.expires_at:
        return None
    return Problem(410, "link-expired", "Link expired", "This short link has expired.")


RULES: tuple[Rule, ...] = (
    Rule("start", lambda target: target.starts_at is not None, _not_started),
    Rule("expiry", lambda target: target.expires_at is not None, _expired),
)


def rules_of(target: Target) -> tuple[Rule, ...]:
    """The rules `target` carries, in the order they are asked."""
    return tuple(rule for rule in RULES if rule.applies(target))


def verdict(target: Target, visit: Visit) -> Problem | None:
    """The refusal of the first rule `visit` fails, or None: it may go."""
    for rule in target.rules:
        refusal = rule.check(target, visit)
        if refusal is not None:
            return refusal
    return None
