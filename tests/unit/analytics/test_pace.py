"""How long a turn of the event loop a click batch takes: longer the further behind,
and longer the longer the loop takes to come back to it."""

from __future__ import annotations

import pytest

from kurz.analytics.pacing import LONGEST, MAX_SHARE, MAX_TURN, MIN_SHARE, TURN, turn_for


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


def test_a_slow_round_of_the_loop_gives_the_batch_a_share_of_it() -> None:
    # 256 connections: a round of the loop is some 20 ms of redirects.
    away = 0.020
    assert turn_for(0.0, away) == pytest.approx(MIN_SHARE * away)
    assert turn_for(1.0, away) == pytest.approx(max(MAX_TURN, MAX_SHARE * away))
    turns = [turn_for(k / 10, away) for k in range(11)]
    assert turns == sorted(turns)
    assert turn_for(0.5, away) > turn_for(0.5)


def test_a_quick_round_of_the_loop_leaves_the_turn_as_it_was() -> None:
    for behind in (0.0, 0.5, 1.0):
        assert turn_for(behind, 0.001) == turn_for(behind)


def test_no_round_of_the_loop_makes_a_turn_longer_than_the_longest() -> None:
    assert turn_for(1.0, 10.0) == LONGEST
    assert turn_for(0.0, 10.0) == LONGEST
