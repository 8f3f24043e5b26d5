"""What holds redirects behind the click batch: the event loop's longest turns while
ClickStore.record writes a batch, and what a full collection costs.

    python -m bench.loop_turns [--batch 10000] [--rounds 3]

A task that does nothing but yield runs once per turn of the event loop; the CPU
time the loop's thread used between two of its runs is one turn. While a turn
runs, no redirect is answered, so the longest turns bound how long a batch can
hold one. CPU time of the thread, not wall time: what other processes on a shared
host do does not stretch it. Batches are bench.record_cost's (1,000 links, "one
visitor" and "all new"), on SQLite, as the embedded setup records them.

A full collection is timed (CPU) in a process that built the app as `kurz serve`
does, before and after gc.freeze(), which kurz calls once its startup is done.
No figure here is recorded: this is a probe to run before and after a change.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.record_cost import SHAPES, clicks
from kurz.analytics.events import DailySalt
from kurz.analytics.queue import batch_id
from kurz.analytics.store import ClickStore
from kurz.app import create_app
from kurz.bootstrap import build
from kurz.config import Settings
from kurz.db import Database
from kurz.db.migrate import upgrade


async def turns(db: Database, batch: int, shape: str, salt: DailySalt) -> tuple[list[float], float]:
    """The loop's turns (CPU seconds, longest first) while one batch is recorded, and
    the process's CPU per click for it."""
    store = ClickStore(db)
    # The first batch pays for the statements and the user agent parser: not measured.
    await store.record([(batch_id(), clicks(batch, shape=shape, salt=salt, start=time.time()))])
    events = clicks(batch, shape=shape, salt=salt, start=time.time() + 1)
    seen: list[float] = []
    recording = True

    async def tick() -> None:
        last = time.thread_time()
        while recording:
            await asyncio.sleep(0)
            now = time.thread_time()
            seen.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    began = time.process_time()
    await store.record([(batch_id(), events)])
    used = time.process_time() - began
    recording = False
    await ticker
    return sorted(seen, reverse=True), used / batch * 1e6


async def run(batch: int, rounds: int) -> None:
    salt = DailySalt()
    with tempfile.TemporaryDirectory(prefix="kurz-turns-") as tmp:
        db = Database.from_url(f"sqlite:///{Path(tmp) / 'kurz.db'}")
        try:
            await upgrade(db)
            for round_ in range(1, rounds + 1):
                for shape in SHAPES:
                    seen, per_click = await turns(db, batch, shape, salt)
                    longest = ", ".join(f"{t * 1e3:.1f}" for t in seen[:3])
                    print(
                        f"round {round_}/{rounds}  batch {batch:,}  {shape:11}  longest turns "
                        f"{longest} ms CPU ({len(seen):,} turns); {per_click:.1f} us CPU/click"
                    )
        finally:
            await db.dispose()


def full_collection() -> None:
    with tempfile.TemporaryDirectory(prefix="kurz-turns-") as tmp:
        create_app(build(Settings(database_url=f"sqlite:///{Path(tmp) / 'kurz.db'}", grpc_port=0)))
        gc.collect()
        for label in ("as started", "after gc.freeze()"):
            if label != "as started":
                gc.freeze()
            tracked = len(gc.get_objects())
            began = time.thread_time()
            gc.collect()
            used = time.thread_time() - began
            print(f"full collection {label}: {used * 1e3:.1f} ms CPU, {tracked:,} objects tracked")
        gc.unfreeze()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loop_turns", description=__doc__)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    asyncio.run(run(args.batch, args.rounds))
    full_collection()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
