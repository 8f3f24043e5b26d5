"""The rules of a link's visit: its window [starts_at, expires_at)."""

from __future__ import annotations

from datetime import UTC, datetime

from kurz.links.rules import Visit, verdict
from kurz.links.target import Target

START = datetime(2030, 1, 1, 12, tzinfo=UTC).timestamp()
END = START + 3_600


def link(*, starts_at: float | None = None, expires_at: float | None = None) -> Target:
    return Target(
        link_id=1,
        version=1,
        status=302,
        url="https://example.com/",
        forward_query=False,
        starts_at=starts_at,
        expires_at=expires_at,
        max_visits=None,
    )


def slug_at(target: Target, at: float) -> str | None:
    refusal = verdict(target, Visit(at))
    return None if refusal is None else refusal.slug


def test_a_link_goes_only_within_its_window() -> None:
    target = link(starts_at=START, expires_at=END)
    assert slug_at(target, START - 0.5) == "link-not-active"
    assert slug_at(target, START) is None
    assert slug_at(target, END - 0.5) is None
    assert slug_at(target, END) == "link-expired"


def test_not_active_yet_says_from_when_in_utc() -> None:
    refusal = verdict(link(starts_at=START + 0.25), Visit(START))
    assert refusal is not None
    assert (refusal.status, refusal.title) == (410, "Link not active yet")
    assert refusal.detail == "This short link is active from 2030-01-01T12:00:00.250000Z."


def test_a_link_with_no_window_carries_no_rule() -> None:
    target = link()
    assert target.rules == ()
    assert target.plain
    assert [rule.name for rule in link(starts_at=START).rules] == ["start"]
    assert not link(starts_at=START).plain
