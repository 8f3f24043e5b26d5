"""Instructions per get-hit (callgrind): the cache comparison the shared host cannot blur.

    python -m bench.cache_instructions [--gets 100000] [--no-record]

bench/cache.py times the caches, and on this host its get-hit ratios move by 20%
from run to run. This counts instructions instead, with valgrind's callgrind: each
cache is run twice in a child process, with no gets and with `--gets` gets of 1,000
cached keys, and the difference is divided by the gets. The figure includes the
loop that calls `get` (the same for every cache), and says nothing of memory stalls.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence

from bench import figures
from bench.cache import Mapping
from bench.harness import command_line, record

KINDS = ("kurz LRUCache", "kurz TinyLFUCache", "lru-dict", "cachetools")
KEYS = 1_000


def child(kind: str, rounds: int) -> None:
    import cachetools
    from lru import LRU

    from kurz.cache import LRUCache, TinyLFUCache

    keys = list(range(KEYS))
    get: Callable[[int], object]
    if kind == KINDS[0] or kind == KINDS[1]:
        # TinyLFUCache counts once half full: 2,000 entries holding 1,000 keys.
        cache: LRUCache[int, int] = (
            LRUCache(10 * KEYS) if kind == KINDS[0] else TinyLFUCache(2 * KEYS)
        )
        for key in keys:
            cache.put(key, 1)
        get = cache.get
    else:
        mapping: Mapping = LRU(10 * KEYS) if kind == KINDS[2] else cachetools.LRUCache(10 * KEYS)
        for key in keys:
            mapping[key] = 1
        get = mapping.get
    for _ in range(rounds):
        for key in keys:
            get(key)


def instructions(kind: str, rounds: int) -> int:
    argv = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, "-m", "bench.cache_instructions", "--child", kind, str(rounds),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    for line in done.stderr.splitlines():
        if "Collected" in line:
            return int(line.split()[-1])
    raise RuntimeError(f"no instruction count from callgrind: {done.stderr[-500:]}")


def plot(counts: dict[str, float], gets: int) -> None:
    """Instructions per get-hit, one bar a cache, beside docs/designs/caching-lru-tinylfu.md."""
    fig, ax = figures.new(
        f"Instructions per get-hit (callgrind, {gets:,} gets of {KEYS:,} cached int keys)",
        "instructions per get-hit (including the calling loop)", "",
        height=2.6,
    )  # fmt: skip
    names = list(counts)[::-1]
    bars = ax.barh(names, [counts[n] for n in names], color=figures.COLORS[: len(names)][::-1])
    ax.bar_label(bars, [f"{counts[n]:,.0f}" for n in names], padding=3)
    ax.set_xlim(0, max(counts.values()) * 1.2)
    ax.grid(axis="y", visible=False)
    figures.save(fig, "designs/figures/caching-lru-tinylfu-instructions.svg")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--child"]:
        child(argv[1], int(argv[2]))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.cache_instructions")
    parser.add_argument("--gets", type=int, default=100_000)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 1
    rounds = max(1, args.gets // KEYS)
    counts = {
        kind: (instructions(kind, rounds) - instructions(kind, 0)) / (rounds * KEYS)
        for kind in KINDS
    }
    lrudict = counts["lru-dict"]
    lines = ["| cache | instructions per get-hit | / lru-dict |", "|---|---:|---:|"]
    lines += [f"| {kind} | {n:,.0f} | {n / lrudict:.2f} |" for kind, n in counts.items()]
    print("\n".join(lines))
    plot(counts, args.gets)
    if not args.no_record:
        command = command_line("bench-cache", "bench.cache_instructions", argv)
        record("Cache get-hit, in instructions", command, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
