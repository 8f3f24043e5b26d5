"""The worker's parts that need no store: retry delays, current_job()."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kurz.jobs.worker import Backoff, current_job


def test_the_ceiling_doubles_per_attempt_up_to_the_cap() -> None:
    top = Backoff(base=1.0, cap=60.0, rng=lambda: 1.0)
    assert [top.delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert top.delay(10_000) == 60.0


def test_full_jitter_scales_the_whole_ceiling() -> None:
    assert Backoff(base=2.0, rng=lambda: 0.0).delay(5) == 0.0
    assert Backoff(base=2.0, rng=lambda: 0.25).delay(3) == 2.0


@given(attempts=st.integers(1, 5000), draw=st.floats(0, 1, exclude_max=True))
def test_a_delay_is_never_negative_nor_past_the_cap(attempts: int, draw: float) -> None:
    delay = Backoff(base=0.5, cap=3600.0, rng=lambda: draw).delay(attempts)
    assert 0.0 <= delay <= 3600.0


def test_current_job_outside_a_handler_says_so() -> None:
    with pytest.raises(RuntimeError, match="inside a job handler"):
        current_job()
