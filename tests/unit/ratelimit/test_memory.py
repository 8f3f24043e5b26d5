"""The in-process limiter writes GCRA out in one function; it must answer as gcra does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kurz.ratelimit.gcra import Decision, decide, step
from kurz.ratelimit.memory import MemoryLimiter
from kurz.ratelimit.policy import Policy
from tests.support import FakeClock

policies = st.builds(
    Policy,
    name=st.sampled_from(["a", "b"]),
    limit=st.integers(1, 10_000),
    window=st.integers(1, 3600),
    burst=st.integers(1, 10**9),
).filter(lambda p: p.interval >= 1e-4)

checks = st.lists(
    st.tuples(
        st.floats(0, 30, allow_nan=False),  # seconds since the previous check
        st.sampled_from(["k1", "k2", "k3"]),
        st.integers(1, 5),  # cost
        st.booleans(),  # which of the two policies
    ),
    min_size=1,
    max_size=200,
)


def reference(tats: dict[tuple[str, str], float], policy: Policy, key: str, now: float,
              cost: int) -> Decision:  # fmt: skip
    allowed, kept = step(tats.get((policy.name, key)), now, policy, cost)
    if allowed:
        tats[(policy.name, key)] = kept
    return decide(policy, allowed, kept - now)


@settings(max_examples=300)
@given(first=policies, second=policies, checks=checks, start=st.floats(0, 2e9))
def test_every_decision_equals_step_then_decide(
    first: Policy, second: Policy, checks: list[tuple[float, str, int, bool]], start: float
) -> None:
    second = Policy("other", second.limit, second.window, second.burst)
    clock = FakeClock()
    clock.now = start
    limiter = MemoryLimiter(clock)
    tats: dict[tuple[str, str], float] = {}
    for gap, key, cost, use_first in checks:
        clock.advance(gap)
        policy = first if use_first else second
        expected = reference(tats, policy, key, clock(), cost)
        assert limiter.check_now(policy, key, cost) == expected


def test_a_denied_key_counts_as_recently_checked() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock, max_keys=100)
    policy = Policy("p", limit=1, window=3600, burst=1)
    assert limiter.check_now(policy, "hammered").allowed
    for i in range(99):
        limiter.check_now(policy, f"other-{i}")
    assert not limiter.check_now(policy, "hammered").allowed  # now the newest again
    limiter.check_now(policy, "one-more")  # evicts other-0, the least recently checked
    assert not limiter.check_now(policy, "hammered").allowed
    assert limiter.check_now(policy, "other-0").allowed


@settings(max_examples=100)
@given(policy=policies, checks=checks)
def test_a_peek_answers_as_the_check_would_and_changes_nothing(
    policy: Policy, checks: list[tuple[float, str, int, bool]]
) -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock)
    tats: dict[tuple[str, str], float] = {}
    for gap, key, cost, check_too in checks:
        clock.advance(gap)
        expected = reference(dict(tats), policy, key, clock(), cost)
        assert limiter.peek_now(policy, key, cost) == expected
        if check_too:
            assert limiter.check_now(policy, key, cost) == reference(
                tats, policy, key, clock(), cost
            )


def test_a_peek_keeps_no_key() -> None:
    limiter = MemoryLimiter(FakeClock())
    policy = Policy("p", limit=10, window=10, burst=5)
    for key in ("a", "b", "c"):
        assert limiter.peek_now(policy, key).remaining == 4
    assert len(limiter) == 0
