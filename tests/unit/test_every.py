"""app.every: the periodic task that stands in for the job scheduler."""

from __future__ import annotations

import asyncio

import pytest

from kurz.app import every


async def test_every_runs_the_job_again_after_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0
    third = asyncio.Event()

    async def job() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            third.set()
        if calls == 1:
            raise RuntimeError("first run fails")

    task = asyncio.create_task(every(0.001, "test job", job))
    third_run = asyncio.create_task(third.wait())
    # If the failure ended the loop, the task finishes before a third run ever comes.
    await asyncio.wait({task, third_run}, return_when=asyncio.FIRST_COMPLETED)
    assert not task.done(), task
    assert third.is_set()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls >= 3
    [failure] = [r for r in caplog.records if "test job failed" in r.getMessage()]
    assert failure.exc_info is not None
