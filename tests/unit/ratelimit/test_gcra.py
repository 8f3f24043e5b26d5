"""GCRA's guarantees, for any arrival sequence (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kurz.ratelimit.gcra import EPSILON, step
from kurz.ratelimit.policy import Policy

policies = st.builds(
    Policy,
    name=st.just("p"),
    limit=st.integers(1, 1000),
    window=st.integers(1, 3600),
    burst=st.integers(1, 200),
)


def run(policy: Policy, arrivals: list[float]) -> list[float]:
    """The times of the allowed requests."""
    tat: float | None = None
    allowed = []
    for now in arrivals:
        ok, tat = step(tat, now, policy)
        if ok:
            allowed.append(now)
    return allowed


@settings(max_examples=300)
@given(
    policy=policies,
    gaps=st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=300),
)
def test_no_window_ever_allows_more_than_burst_plus_rate_times_length(
    policy: Policy, gaps: list[float]
) -> None:
    arrivals = []
    now = 1_000_000.0
    for gap in gaps:
        now += gap
        arrivals.append(now)
    allowed = run(policy, arrivals)
    rate = policy.limit / policy.window
    # Every window [allowed[i], allowed[j]] is the tightest one holding those requests.
    # (EPSILON: a request may pass 1 us early, see kurz.ratelimit.gcra.)
    for i in range(len(allowed)):
        for j in range(i, len(allowed)):
            length = allowed[j] - allowed[i] + EPSILON
            assert j - i + 1 <= policy.burst + rate * length + 1e-9


@settings(max_examples=300)
@given(
    policy=policies,
    slack=st.floats(1.0, 3.0),
    count=st.integers(1, 300),
    offset=st.floats(0, 1e6),
)
def test_a_steady_client_under_the_rate_is_never_refused(
    policy: Policy, slack: float, count: int, offset: float
) -> None:
    gap = policy.interval * slack
    arrivals = [offset + i * gap for i in range(count)]
    assert len(run(policy, arrivals)) == count


@given(policy=policies)
def test_a_full_bucket_allows_exactly_burst_at_once(policy: Policy) -> None:
    allowed = run(policy, [5.0] * (policy.burst + 3))
    assert len(allowed) == policy.burst
