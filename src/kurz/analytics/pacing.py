"""A batch's share of the event loop: worked on a slice at a time, between redirects.

Recording runs on the event loop that answers redirects (kurz.analytics.store says
why not in a thread), so a large batch gives the loop its turn whenever it has had
a turn's length of it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import TypeVar

# A batch is worked on SLICE events (or keys, or rows) at a time, and gives the event
# loop its turn once it has had TURN seconds of it. Not a turn per slice: a turn of a
# busy loop serves every connection that is ready, and a batch taking a slice per
# turn would fall behind the clicks those redirects make. TURN is what the redirects
# of one turn may wait for the batch.
# A batch that is behind (its queue filling up: redirects come faster than the loop's
# share left to the batch can record them) takes longer turns, up to MAX_TURN when the
# queue is full: a few milliseconds more on the redirects of those turns, where a
# full queue would drop clicks.
# A turn also lasts a share of the time the loop took to come back to the batch (from
# MIN_SHARE of it, empty, to MAX_SHARE, full; never past LONGEST): one round of a
# busy loop answers every ready connection, so with many connections a fixed turn
# leaves the batch less of the process than recording takes (docs/analytics.md,
# "When the batch falls behind"). A round then lasts at most twice as long, and only
# while the queue is full.
SLICE = 250
TURN = 0.002
MAX_TURN = 0.020
MIN_SHARE = 0.25
MAX_SHARE = 1.0
LONGEST = 0.1

T = TypeVar("T")


def turn_for(behind: float, away: float = 0.0) -> float:
    """How long a turn a batch takes when its queue is `behind` (0 empty, 1 full) full
    and the loop took `away` seconds to come back to it."""
    behind = min(1.0, max(0.0, behind))
    share = MIN_SHARE + (MAX_SHARE - MIN_SHARE) * behind
    return min(LONGEST, max(TURN * (1 - behind) + MAX_TURN * behind, away * share))


class Pace:
    """When the batch work under way last gave the event loop its turn, and how long
    the loop took to give it back."""

    since = time.perf_counter()
    away = 0.0
    # How full the queue behind the batch under way is; None: no batch (turn_for(0)).
    behind: float | None = None

    @classmethod
    async def turn(cls) -> None:
        """Give the event loop its turn if the batch has had its turn's length of it."""
        now = time.perf_counter()
        if now - cls.since >= turn_for(cls.behind or 0.0, cls.away):
            await asyncio.sleep(0)
            cls.since = time.perf_counter()
            cls.away = cls.since - now


async def slices(items: Sequence[T]) -> AsyncIterator[Sequence[T]]:
    """`items` a SLICE at a time, the event loop given its turn between two when due."""
    for start in range(0, len(items), SLICE):
        if start:
            await Pace.turn()
        yield items[start : start + SLICE]
