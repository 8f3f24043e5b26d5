"""While kurz serves, what its startup made is out of the cyclic collector's sight.

A full collection examines every tracked object: the startup's hundred thousand
(modules, routes, models) would hold every request for tens of milliseconds each
time, for nothing, since they live as long as the process.
"""

from __future__ import annotations

import gc

from kurz.app import YOUNG, create_app
from kurz.bootstrap import build
from kurz.config import Settings
from tests.support import FakeClock


async def test_startup_objects_are_frozen_while_serving_and_thawed_after(
    settings: Settings, clock: FakeClock
) -> None:
    app = create_app(build(settings, clock=clock))
    assert gc.get_freeze_count() == 0
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() > 10_000
        # A full collection now has only what was made since to look at.
        assert len(gc.get_objects()) < gc.get_freeze_count()
    # Given back to the collector (a test process starts many apps, one after another).
    assert gc.get_freeze_count() == 0


async def test_the_youngest_generation_is_collected_less_often_while_serving(
    settings: Settings, clock: FakeClock
) -> None:
    before = gc.get_threshold()
    app = create_app(build(settings, clock=clock))
    async with app.router.lifespan_context(app):
        assert gc.get_threshold() == (YOUNG, *before[1:])
        assert before[0] < YOUNG
    assert gc.get_threshold() == before
