"""kurz.cache.LRUCache against the LRU caches a user would otherwise pick, in one run.

    python -m bench.cache [--ops 200000] [--rounds 5] [--no-record]

Contenders: functools.lru_cache (C, wraps a function), cachetools.LRUCache (pure
Python) and lru-dict's LRU (C). Workloads, on a cache of 10,000 entries:

- get-hit: every key asked for is cached;
- get-miss: no key asked for is cached (lru_cache cannot miss without storing, so it
  has no figure here);
- set with eviction: the cache is full and every key is new, so every set evicts;
- zipf: keys drawn from a Zipf distribution (s = 1) over 100,000 keys; a miss is
  followed by a set, as a read-through cache does.

Each round runs every contender on every workload in turn (order rotating), and the
median over rounds is reported, so that drift on the shared host hits all alike.
"""

from __future__ import annotations

import argparse
import bisect
import functools
import gc
import itertools
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import cachetools
import lru

from bench import harness
from bench.harness import cpu_model, source_state
from kurz.cache import LRUCache

SIZE = 10_000
UNIVERSE = 100_000
CONTENDERS = ("kurz LRUCache", "functools.lru_cache", "cachetools.LRUCache", "lru-dict LRU")
WORKLOADS = ("get-hit", "get-miss", "set with eviction", "zipf")
Run = Callable[[list[int]], None]


class Mapping(Protocol):
    """What the bench uses of cachetools' and lru-dict's caches."""

    def get(self, key: int, /) -> int | None: ...
    def __setitem__(self, key: int, value: int, /) -> None: ...


def zipf_keys(n: int, seed: int) -> list[int]:
    weights = [1 / rank for rank in range(1, UNIVERSE + 1)]
    cumulative = list(itertools.accumulate(weights))
    total = cumulative[-1]
    rng = random.Random(seed)
    return [bisect.bisect_left(cumulative, rng.random() * total) for _ in range(n)]


def kurz_runs() -> dict[str, Run]:
    def fresh() -> LRUCache[int, int]:
        cache: LRUCache[int, int] = LRUCache(SIZE)
        for k in range(SIZE):
            cache.put(k, k)
        return cache

    def get(keys: list[int]) -> None:
        get = fresh().get
        for k in keys:
            get(k)

    def put(keys: list[int]) -> None:
        put = fresh().put
        for k in keys:
            put(k, k)

    def zipf(keys: list[int]) -> None:
        cache = fresh()
        get, put = cache.get, cache.put
        for k in keys:
            if get(k) is None:
                put(k, k)

    return {"get-hit": get, "get-miss": get, "set with eviction": put, "zipf": zipf}


def functools_runs() -> dict[str, Run]:
    def fresh() -> Callable[[int], int]:
        cached = functools.lru_cache(maxsize=SIZE)(lambda k: k)
        for k in range(SIZE):
            cached(k)
        return cached

    def call(keys: list[int]) -> None:
        cached = fresh()
        for k in keys:
            cached(k)

    return {"get-hit": call, "set with eviction": call, "zipf": call}


def mapping_runs(fresh: Callable[[], Mapping]) -> dict[str, Run]:
    """The runs for a cache used as a mapping (cachetools, lru-dict): `get`, `c[k] = v`."""

    def get(keys: list[int]) -> None:
        get = fresh().get
        for k in keys:
            get(k)

    def put(keys: list[int]) -> None:
        cache = fresh()
        for k in keys:
            cache[k] = k

    def zipf(keys: list[int]) -> None:
        cache = fresh()
        get = cache.get
        for k in keys:
            if get(k) is None:
                cache[k] = k

    return {"get-hit": get, "get-miss": get, "set with eviction": put, "zipf": zipf}


def filled(cache: Mapping) -> Mapping:
    for k in range(SIZE):
        cache[k] = k
    return cache


@dataclass(frozen=True)
class Options:
    ops: int
    rounds: int
    no_record: bool


def workload_keys(ops: int) -> dict[str, list[int]]:
    rng = random.Random(7)
    return {
        "get-hit": [rng.randrange(SIZE) for _ in range(ops)],
        "get-miss": [SIZE + rng.randrange(UNIVERSE) for _ in range(ops)],
        "set with eviction": list(range(SIZE, SIZE + ops)),
        "zipf": zipf_keys(ops, 11),
    }


def measure(opts: Options) -> dict[str, dict[str, float]]:
    contenders = dict(
        zip(
            CONTENDERS,
            (
                kurz_runs(),
                functools_runs(),
                mapping_runs(lambda: filled(cachetools.LRUCache(maxsize=SIZE))),
                mapping_runs(lambda: filled(lru.LRU(SIZE))),
            ),
            strict=True,
        )
    )
    keys = workload_keys(opts.ops)
    rates: dict[str, dict[str, list[float]]] = {c: {w: [] for w in WORKLOADS} for c in CONTENDERS}
    for round_ in range(opts.rounds):
        order = CONTENDERS[round_ % len(CONTENDERS) :] + CONTENDERS[: round_ % len(CONTENDERS)]
        for workload in WORKLOADS:
            for name in order:
                run = contenders[name].get(workload)
                if run is None:
                    continue
                gc.collect()
                start = time.perf_counter()
                run(keys[workload])
                rates[name][workload].append(opts.ops / (time.perf_counter() - start))
        print(f"  round {round_ + 1} done", flush=True)
    return {c: {w: statistics.median(r) for w, r in by.items() if r} for c, by in rates.items()}


def report(opts: Options, medians: dict[str, dict[str, float]]) -> list[str]:
    lines = [
        f"- machine: {cpu_model()}, Python {sys.version.split()[0]}; {source_state()}",
        f"- cache of {SIZE:,} int keys; {opts.ops:,} operations per measurement (the "
        "cache filled before, untimed); "
        f"{opts.rounds} rounds, contenders' order rotating; median operations per second",
        "",
        "| workload | " + " | ".join(CONTENDERS) + " |",
        "|---|" + "---:|" * len(CONTENDERS),
    ]
    for workload in WORKLOADS:
        cells = [
            f"{medians[c][workload] / 1e6:.2f} M" if workload in medians[c] else "n/a"
            for c in CONTENDERS
        ]
        lines.append(f"| {workload} | " + " | ".join(cells) + " |")
    kurz, tools, c_lru = (
        medians[c] for c in ("kurz LRUCache", "cachetools.LRUCache", "lru-dict LRU")
    )
    beat = all(kurz[w] > tools[w] for w in WORKLOADS)
    ratios = ", ".join(f"{w} {kurz[w] / tools[w]:.1f}x" for w in WORKLOADS)
    hit = c_lru["get-hit"] / kurz["get-hit"]
    lines += [
        "",
        f"- kurz over cachetools: {ratios} (goal: faster on every row: "
        f"{'met' if beat else 'NOT met'})",
        f"- lru-dict over kurz on get-hit: {hit:.2f}x (goal: within 2x: "
        f"{'met' if hit <= 2 else 'NOT met'})",
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(
        prog="python -m bench.cache",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--ops", type=int, default=200_000, help="operations per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="rounds")
    parser.add_argument("--no-record", action="store_true", help="do not append to the docs")
    args = parser.parse_args(argv)
    if args.ops < 1000 or args.rounds < 1:
        parser.error("--ops >= 1000, --rounds >= 1")
    opts = Options(args.ops, args.rounds, args.no_record)
    lines = report(opts, measure(opts))
    harness.publish(
        "LRU cache", lines,
        target="bench-cache", module="bench.cache", argv=argv, keep=not opts.no_record,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
