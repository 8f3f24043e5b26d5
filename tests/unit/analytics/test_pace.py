"""How long a turn of the event loop a click batch takes: longer the further behind."""

from __future__ import annotations

import pytest

from kurz.analytics.store import MAX_TURN, TURN, turn_for


def test_a_batch_with_nothing_behind_it_takes_the_short_turn() -> None:
    assert turn_for(0.0) == TURN


def test_a_full_queue_gives_the_batch_its_longest_turn() -> None:
    assert turn_for(1.0) == MAX_TURN
    assert TURN < MAX_TURN


@pytest.mark.parametrize("behind", [-0.5, 1.5, 100.0])
def test_the_turn_stays_within_its_bounds(behind: float) -> None:
    assert TURN <= turn_for(behind) <= MAX_TURN


def test_the_further_behind_the_longer_the_turn() -> None:
    turns = [turn_for(k / 10) for k in range(11)]
    assert turns == sorted(turns)
    assert len(set(turns)) == len(turns)
