"""What recording a click costs, in CPU instructions: a figure the shared host cannot blur.

    python -m bench.record_instructions [--batch 10000] [--batches 2]

Runs ClickStore.record on SQLite under valgrind's callgrind twice: once for a
warm-up batch only, once for it and `--batches` more, with the same events built
in both, so the difference is what the extra batches cost. The clicks are those of
bench.record_cost's "one visitor" shape (wrk's traffic: 1,000 links of one user, one
address and user agent). Every thread of the process is counted: aiosqlite runs
SQLite in one of its own. Needs valgrind.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.harness import BenchError, instructions

# A fixed time and salt: the same events, and so the same instructions, every run.
START = 1_796_000_000.0


async def _record(extra: int, size: int, db: str) -> None:
    from bench.record_cost import clicks, owned_links
    from kurz.analytics.events import DailySalt
    from kurz.analytics.queue import batch_id
    from kurz.analytics.store import ClickStore
    from kurz.db import Database
    from kurz.db.migrate import upgrade

    database = Database.from_url(f"sqlite:///{db}")
    try:
        await upgrade(database)
        await owned_links(database)
        store = ClickStore(database)
        salt = DailySalt(lambda: START, lambda n: b"s" * n)
        events = clicks(size * 3, shape="one visitor", salt=salt, start=START)
        for n in range(1 + extra):
            await store.record([(batch_id(), events[n * size : (n + 1) * size])])
    finally:
        await database.dispose()


def count(extra: int, size: int, directory: Path) -> int:
    """Instructions the whole child process ran (callgrind's "Collected")."""
    db = str(directory / f"record-{extra}.db")
    return instructions("bench.record_instructions", str(extra), str(size), db)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--child"]:
        asyncio.run(_record(int(argv[1]), int(argv[2]), argv[3]))
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m bench.record_instructions", description=__doc__
    )
    parser.add_argument("--batch", type=int, default=10_000, help="clicks per batch")
    parser.add_argument("--batches", type=int, default=2, help="measured batches (at most 2)")
    args = parser.parse_args(argv)
    if not 1 <= args.batches <= 2:
        parser.error("--batches must be 1 or 2 (the events are built for three batches)")
    if not shutil.which("valgrind"):
        print("bench failed: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="kurz-record-") as tmp:
        try:
            base = count(0, args.batch, Path(tmp))
            loaded = count(args.batches, args.batch, Path(tmp))
        except BenchError as exc:
            print(f"bench failed: {exc}", file=sys.stderr)
            return 1
    per_click = (loaded - base) / (args.batches * args.batch)
    print(
        f"{per_click:,.0f} instructions per click recorded "
        f"(batches of {args.batch:,}, one visitor, 1,000 links, SQLite)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
