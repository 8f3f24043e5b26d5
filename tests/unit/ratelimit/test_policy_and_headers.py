"""Policies from configuration, and the header fields, read back by a real SF parser."""

from __future__ import annotations

import pytest
from http_sfv.list import List as SfList

from kurz.ratelimit import MemoryLimiter, Policy, parse_policy
from kurz.ratelimit.headers import carries_fields, limit_field, policy_field, retry_after
from tests.support import FakeClock


@pytest.mark.parametrize(
    ("spec", "limit", "window", "burst"),
    [
        ("120/60s;burst=20", 120, 60, 20),
        ("120/60s", 120, 60, 120),
        ("10/m", 10, 60, 10),
        (" 5 / 2h ; burst = 1 ", 5, 7200, 1),
        ("1000/1d;burst=50", 1000, 86400, 50),
        ("7/s", 7, 1, 7),
    ],
)
def test_parses_policies(spec: str, limit: int, window: int, burst: int) -> None:
    assert parse_policy("api", spec) == Policy("api", limit, window, burst)


def test_the_fastest_policy_is_still_enforced_exactly() -> None:
    clock = FakeClock()
    policy = Policy("fast", limit=10_000, window=1, burst=3)
    limiter = MemoryLimiter(clock)
    decisions = [limiter.check_now(policy, "k") for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0, 0]
    clock.advance(1e-4)
    assert limiter.check_now(policy, "k").allowed


def test_remaining_never_exceeds_the_burst() -> None:
    limiter = MemoryLimiter(FakeClock())
    policy = Policy("p", limit=10_000, window=1, burst=1_000_000)
    assert limiter.check_now(policy, "k").remaining == 999_999


def test_off_switches_a_policy_off() -> None:
    assert parse_policy("api", "off") is None
    assert parse_policy("api", " OFF ") is None


@pytest.mark.parametrize(
    "spec", ["", "120", "0/60s", "120/0s", "1/60s;burst=0", "a/b", "1/60x", "10001/1s"]
)
def test_rejects_bad_policies(spec: str) -> None:
    with pytest.raises(ValueError, match=r"policy|at least|at most"):
        parse_policy("api", spec)


def test_headers_are_structured_field_lists() -> None:
    clock = FakeClock()
    policy = Policy("api", limit=120, window=60, burst=20)
    limiter = MemoryLimiter(clock)
    for _ in range(3):
        decision = limiter.check_now(policy, "k")

    parsed_policy = SfList()
    parsed_policy.parse(policy_field(policy).encode())
    [item] = parsed_policy
    assert item.value == "api"
    assert dict(item.params) == {"q": 120, "w": 60}

    parsed_limit = SfList()
    parsed_limit.parse(limit_field(decision).encode())
    [item] = parsed_limit
    assert item.value == "api"
    assert dict(item.params) == {"r": 17, "t": 2}  # 3 tokens used, back at 2/s


def test_retry_after_is_never_earlier_than_t() -> None:
    clock = FakeClock()
    policy = Policy("auth", limit=1, window=7, burst=1)
    limiter = MemoryLimiter(clock)
    limiter.check_now(policy, "k")
    clock.advance(0.2)
    denied = limiter.check_now(policy, "k")
    assert not denied.allowed
    parsed = SfList()
    parsed.parse(limit_field(denied).encode())
    t = dict(parsed[0].params)["t"]
    assert int(retry_after(denied)) >= t == 7


@pytest.mark.parametrize(
    ("burst", "quiet"),
    [
        (1, 0),  # the one request a burst of 1 allows leaves nothing: near at once
        (2, 0),  # 1 left of 2 is half: near
        (5, 2),  # 3 of 5 left is more than half; 2 is not
        (10, 4),
    ],
)
def test_a_redirect_is_near_its_limit_once_half_the_burst_or_less_is_left(
    burst: int, quiet: int
) -> None:
    limiter = MemoryLimiter(clock=FakeClock())
    policy = Policy("redirect", limit=1, window=60, burst=burst)
    decisions = [limiter.check_now(policy, "192.0.2.1") for _ in range(burst + 1)]
    nears = [carries_fields(302, decision) for decision in decisions]
    # The first `quiet` redirects leave more than half the burst; every later one, and
    # the refusal, do not.
    assert nears == [False] * quiet + [True] * (burst + 1 - quiet)
    # Every redirect status follows the rule; any other answer carries the fields.
    for status in (301, 303, 307, 308):
        assert [carries_fields(status, d) for d in decisions] == nears
    for status in (200, 304, 404, 410, 429):
        assert all(carries_fields(status, d) for d in decisions)
