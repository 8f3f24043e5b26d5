"""Hit ratios of LRU and LRU+TinyLFU, and what admission costs per operation, in one run.

    python -m bench.hitratio [--quick] [--keys 1000000] [--requests 3000000]
                             [--ops 200000] [--rounds 5] [--no-record]

Both caches are the real classes (kurz.cache.LRUCache, kurz.cache.TinyLFUCache with
its default sketch), used read-through as the redirect path uses its cache: a miss is
followed by a put. A third column reads every miss twice before the put, as kurz's
redirect path does today (FastPath's get, then TieredCache's lookup), which counts a
missed request twice in the sketch. Workloads, over --keys codes (ints), with caches of
0.1%, 1% and 10% of them:

- zipf s: codes drawn from a Zipf distribution of skew s (0.8, 1.0, 1.2), the code
  of each rank fixed by a seeded shuffle;
- scan: zipf 1.0 traffic, and after every 10% of --keys of it, a crawler asking for
  the next 5% of all codes in code order, each once (it walks every code); the
  table shows all requests, and the users' requests alone;
- fresh D: zipf 1.0 traffic in which, every 10,000 requests, D codes never seen take
  the top ranks and every other code moves D ranks down (new links that draw the
  most visits, then fade): recency's best case, frequency's worst. D = 100 puts a
  third of all requests on codes younger than 10,000 requests; D = 10 is milder.

The first fifth of each workload warms the caches and is not counted. Every draw is
seeded, and int keys hash the same in every process, so the ratios repeat exactly.

Costs: timeit-style loops over caches of 10,000 str codes, both classes side by side in
each round, rounds interleaved, median ns per operation.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from matplotlib.ticker import MaxNLocator

from bench import figures, harness
from bench.harness import cpu_model, source_state
from kurz.cache import CountMinSketch, LRUCache, TinyLFUCache

SKEWS = (0.8, 1.0, 1.2)
SIZES = (0.001, 0.01, 0.1)
FRESH_EVERY, FRESH_CODES = 10_000, (100, 10)
# ADR 0002: a redirect that misses the cache costs about 1.1 ms of server CPU.
MISS_US = 1100.0
COST_SIZE = 10_000
Segment = tuple[list[int], bool]  # codes asked for, and whether users asked (not a crawler)


@dataclass(frozen=True)
class Options:
    keys: int
    requests: int
    ops: int
    rounds: int
    no_record: bool


class Zipf:
    """Ranks drawn with P(rank r) proportional to 1 / r^s, by bisecting the cumulative weights."""

    def __init__(self, keys: int, skew: float, rng: random.Random) -> None:
        self.cumulative = list(itertools.accumulate(r**-skew for r in range(1, keys + 1)))
        self.ranks = range(keys)
        self.rng = rng

    def draw(self, n: int) -> list[int]:
        return self.rng.choices(self.ranks, cum_weights=self.cumulative, k=n)


def workloads(opts: Options) -> Iterator[tuple[str, list[Segment]]]:
    """Each workload by name, made when asked for: together they would take gigabytes."""
    n, requests = opts.keys, opts.requests
    codes = list(range(n))
    random.Random(1).shuffle(codes)  # which code has which rank
    for skew in SKEWS:
        ranks = Zipf(n, skew, random.Random(int(skew * 100))).draw(requests)
        yield f"zipf {skew}", [([codes[r] for r in ranks], True)]
    users = Zipf(n, 1.0, random.Random(2))
    block, burst = n // 10, n // 20
    scan: list[Segment] = []
    walked = total = 0
    while total < requests:
        scan.append(([codes[r] for r in users.draw(block)], True))
        scan.append(([(walked + i) % n for i in range(burst)], False))
        walked, total = walked + burst, total + block + burst
    yield "scan", scan
    # At epoch e, rank r is code n + e * D + D - 1 - r: each epoch, D codes no one has
    # seen take ranks 0 .. D - 1, and the code at rank r moves to rank r + D.
    ranks = Zipf(n, 1.0, random.Random(3)).draw(requests)
    for d in FRESH_CODES:
        fresh = [n + (i // FRESH_EVERY + 1) * d - 1 - r for i, r in enumerate(ranks)]
        yield f"fresh {d}", [(fresh, True)]


Phase = tuple[list[int], bool, bool]  # codes, asked by users, counted (not warm-up)


def phases(segments: list[Segment]) -> list[Phase]:
    """The segments, the one holding the end of the warm-up (the first fifth) cut in two."""
    warm = sum(len(keys) for keys, _ in segments) // 5
    out: list[Phase] = []
    for keys, by_users in segments:
        if warm > 0:
            out.append((keys[:warm], by_users, False))
        if warm < len(keys):
            out.append((keys[max(warm, 0) :], by_users, True))
        warm -= len(keys)
    return out


def hit_ratios(
    cache: LRUCache[int, bool], segments: list[Segment], *, twice: bool = False
) -> tuple[float, float]:
    """Hit ratios after the warm-up: of all requests, and of the users' requests.

    `twice`: a miss is read again (`lookup`) before the put, as kurz's redirect path does.
    """
    get, put, lookup = cache.get, cache.put, cache.lookup
    hits = asked = user_hits = user_asked = 0
    for keys, by_users, counted in phases(segments):
        before = cache.hits
        if twice:
            for key in keys:
                if get(key) is None:
                    lookup(key)
                    put(key, True)
        else:
            for key in keys:
                if get(key) is None:
                    put(key, True)
        if counted:
            hits += cache.hits - before
            asked += len(keys)
            if by_users:
                user_hits += cache.hits - before
                user_asked += len(keys)
    return hits / asked, user_hits / max(user_asked, 1)


Caches = Callable[[int], LRUCache[int, bool]]
TWICE = "LRU+TinyLFU, misses read twice"
POLICIES: dict[str, tuple[Caches, bool]] = {
    "LRU": (lambda size: LRUCache(size), False),
    "LRU+TinyLFU": (lambda size: TinyLFUCache(size, rng=random.Random(1)), False),
    TWICE: (lambda size: TinyLFUCache(size, rng=random.Random(1)), True),
}


def study(opts: Options) -> list[tuple[str, int, dict[str, tuple[float, float]]]]:
    rows = []
    for name, segments in workloads(opts):
        for fraction in SIZES:
            size = max(1, round(opts.keys * fraction))
            ratios = {}
            for policy, (make, twice) in POLICIES.items():
                start = time.perf_counter()
                ratios[policy] = hit_ratios(make(size), segments, twice=twice)
                took = time.perf_counter() - start
                print(
                    f"  {name}, {size:,} entries, {policy}: {ratios[policy][0]:.4f} ({took:.0f} s)"
                )
            rows.append((name, size, ratios))
    return rows


# Costs ----------------------------------------------------------------------------

Run = Callable[[], int]  # the timed loop; answers how many operations it made


def cost_runs(ops: int) -> dict[str, dict[str, Callable[[], Run]]]:
    """Per operation and class, a function that prepares a cache (untimed) and returns
    the timed loop of `ops` operations on it."""
    codes = [f"c{i:07d}" for i in range(max(COST_SIZE + ops, 10 * COST_SIZE))]
    cached, new = codes[:COST_SIZE], codes[COST_SIZE : COST_SIZE + ops]
    rng = random.Random(7)
    hit_keys = [rng.choice(cached) for _ in range(ops)]
    zipf = Zipf(10 * COST_SIZE, 1.0, random.Random(8)).draw(ops)
    zipf_keys = [codes[r] for r in zipf]

    def filled(make: Callable[[], LRUCache[str, bool]], read: bool = False) -> LRUCache[str, bool]:
        cache = make()
        for code in cached:
            cache.put(code, True)
        if read:  # every cached code asked for once: the victims are warm
            for code in cached:
                cache.get(code)
        return cache

    def gets(cache: LRUCache[str, bool], keys: list[str]) -> Run:
        get = cache.get

        def run() -> int:
            for key in keys:
                get(key)
            return len(keys)

        return run

    def puts(cache: LRUCache[str, bool], keys: list[str]) -> Run:
        put = cache.put

        def run() -> int:
            for key in keys:
                put(key, True)
            return len(keys)

        return run

    def read_through(cache: LRUCache[str, bool]) -> Run:
        get, put = cache.get, cache.put

        def run() -> int:
            for key in zipf_keys:
                if get(key) is None:
                    put(key, True)
            return len(zipf_keys)

        return run

    # Admitted puts: as many as the cache holds, so that each one evicts a cached code
    # never asked for (were there more, the newcomers would meet each other as victims,
    # tie, and be turned away). Counted twice beforehand, in a sketch whose sample no
    # run reaches and wide enough that no cached code shares all its counters with them.
    admitted = new[:COST_SIZE]

    def counted() -> TinyLFUCache[str, bool]:
        sketch = CountMinSketch(16 * 2 * COST_SIZE, sample_size=10**12)
        cache: TinyLFUCache[str, bool] = TinyLFUCache(COST_SIZE, sketch=sketch)
        for key in admitted:
            sketch.increment(key)
            sketch.increment(key)
        return cache

    Make = Callable[[], LRUCache[str, bool]]

    def for_class(make: Make, admitting: Make, roomy: Make) -> dict[str, Callable[[], Run]]:
        return {
            "get, hit": lambda: gets(filled(make), hit_keys),
            "get, hit, cache a quarter full": lambda: gets(filled(roomy), hit_keys),
            "get, miss": lambda: gets(filled(make), new),
            "put, new code, full cache: turned away": lambda: puts(filled(make, read=True), new),
            "put, new code, full cache: admitted": lambda: puts(filled(admitting), admitted),
            "read-through, zipf 1.0 over 100,000 codes": lambda: read_through(filled(make)),
        }

    def lru() -> LRUCache[str, bool]:
        return LRUCache(COST_SIZE)

    def tiny() -> LRUCache[str, bool]:
        return TinyLFUCache(COST_SIZE)

    return {
        "LRU": for_class(lru, lru, lambda: LRUCache(4 * COST_SIZE)),
        "LRU+TinyLFU": for_class(tiny, counted, lambda: TinyLFUCache(4 * COST_SIZE)),
    }


COST_OPS = (
    "get, hit",
    "get, hit, cache a quarter full",
    "get, miss",
    "put, new code, full cache: turned away",
    "put, new code, full cache: admitted",
    "read-through, zipf 1.0 over 100,000 codes",
)


def costs(opts: Options) -> dict[str, dict[str, float]]:
    runs = cost_runs(opts.ops)
    samples: dict[str, dict[str, list[float]]] = {p: {op: [] for op in COST_OPS} for p in runs}
    order = list(runs)
    for round_ in range(opts.rounds):
        for op in COST_OPS:
            for policy in order if round_ % 2 == 0 else reversed(order):
                run = runs[policy][op]()
                gc.collect()
                start = time.perf_counter()
                made = run()
                samples[policy][op].append((time.perf_counter() - start) / made * 1e9)
        print(f"  costs: round {round_ + 1} done", flush=True)
    return {p: {op: statistics.median(v) for op, v in by.items()} for p, by in samples.items()}


# Figure ---------------------------------------------------------------------------


def plot(opts: Options, rows: list[tuple[str, int, dict[str, tuple[float, float]]]]) -> None:
    """Hit ratio against cache size, one panel per workload (the users' requests for
    scan), each policy a line: docs/designs/figures/caching-lru-tinylfu-hitratio.svg."""
    panels = [("zipf 0.8", 0), ("zipf 1.0", 0), ("zipf 1.2", 0)]
    panels += [("scan", 1), ("fresh 100", 0), ("fresh 10", 0)]
    fig, axes = figures.grid(2, 3, width=9.0, height=5.6)
    for i, (ax, (name, view)) in enumerate(zip(axes.flat, panels, strict=True)):
        mine = [(size, ratios) for workload, size, ratios in rows if workload == name]
        sizes = [size / opts.keys * 100 for size, _ in mine]
        for policy in POLICIES:
            ax.plot(
                sizes, [ratios[policy][view] * 100 for _, ratios in mine], marker="o",
                label=policy, linestyle="--" if policy == TWICE else "-",
            )  # fmt: skip
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.yaxis.set_major_locator(MaxNLocator(4))
        ax.set_xticks(sizes, [f"{s:g}%" for s in sizes])
        ax.set_title(name + (" (users' requests)" if view else ""), loc="left", fontsize=10)
        if i >= 3:  # axis labels on the outer panels only: each costs kilobytes of glyphs
            ax.set_xlabel("cache size (% of codes)")
        if i % 3 == 0:
            ax.set_ylabel("hit ratio (%)")
    axes.flat[0].legend(loc="upper left", fontsize=8)
    fig.suptitle(
        f"Hit ratio by cache size, LRU vs LRU+TinyLFU (kurz.cache; {opts.keys:,} codes, "
        f"{opts.requests:,} requests a workload)",
        x=0.01, ha="left", fontsize=11,
    )  # fmt: skip
    figures.save(fig, "designs/figures/caching-lru-tinylfu-hitratio.svg")


# Report ---------------------------------------------------------------------------


def report(
    opts: Options,
    rows: list[tuple[str, int, dict[str, tuple[float, float]]]],
    ns: dict[str, dict[str, float]],
) -> list[str]:
    added_hit = ns["LRU+TinyLFU"]["get, hit"] - ns["LRU"]["get, hit"]
    lines = [
        f"- machine: {cpu_model()}, Python {sys.version.split()[0]}; {source_state()}",
        f"- {opts.keys:,} codes, {opts.requests:,} requests per workload (the first fifth "
        "warms up, uncounted); read-through (a miss is followed by a put); "
        "TinyLFUCache with its default sketch (width 4x, sample 10x the cache's entries)",
        "- net: hit-ratio gain x 1.1 ms (a miss's CPU, ADR 0002) minus what admission adds "
        f"to a get-hit ({added_hit:.0f} ns, below), per request",
        "",
        "| workload | cache entries | LRU | LRU+TinyLFU | gain (points) | net (us/request) "
        "| LRU+TinyLFU, misses read twice |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, size, ratios in rows:
        views = [(name, 0)] if name != "scan" else [("scan, all", 0), ("scan, users", 1)]
        for label, view in views:
            lru, tiny = ratios["LRU"][view], ratios["LRU+TinyLFU"][view]
            net = (tiny - lru) * MISS_US - added_hit / 1000
            lines.append(
                f"| {label} | {size:,} | {lru:.2%} | {tiny:.2%} | "
                f"{(tiny - lru) * 100:+.2f} | {net:+.2f} | {ratios[TWICE][view]:.2%} |"
            )
    lines += [
        "",
        f"- costs: caches of {COST_SIZE:,} str codes, {opts.ops:,} operations per "
        f"measurement, {opts.rounds} rounds, both classes in every round; median ns "
        'per operation ("a quarter full": 10,000 codes in a cache of 40,000, where '
        'TinyLFU does not count yet; "admitted": '
        f"{min(opts.ops, COST_SIZE):,} puts only, of codes counted twice beforehand, each "
        "evicting a code never asked for)",
        "",
        "| operation | LRUCache | TinyLFUCache | added |",
        "|---|---:|---:|---:|",
    ]
    for op in COST_OPS:
        lru, tiny = ns["LRU"][op], ns["LRU+TinyLFU"][op]
        lines.append(f"| {op} | {lru:,.0f} | {tiny:,.0f} | {tiny - lru:+,.0f} |")
    lines += [
        "",
        f"- admission pays for its cost on the hit path once it raises the hit ratio by "
        f"{added_hit / 1000 / MISS_US * 100:.3f} points (a miss costs about 1.1 ms)",
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(
        prog="python -m bench.hitratio",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="100,000 codes, 300,000 requests")
    parser.add_argument("--keys", type=int, help="codes (default 1,000,000)")
    parser.add_argument("--requests", type=int, help="requests per workload (default 3,000,000)")
    parser.add_argument("--ops", type=int, default=200_000, help="operations per cost sample")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of cost samples")
    parser.add_argument("--no-record", action="store_true", help="do not append to the docs")
    args = parser.parse_args(argv)
    keys = args.keys or (100_000 if args.quick else 1_000_000)
    requests = args.requests or (300_000 if args.quick else 3_000_000)
    if keys < 1000 or requests < 10_000 or args.ops < 1000 or args.rounds < 1:
        parser.error("--keys >= 1000, --requests >= 10000, --ops >= 1000, --rounds >= 1")
    opts = Options(keys, requests, args.ops, args.rounds, args.no_record)
    rows = study(opts)
    plot(opts, rows)
    lines = report(opts, rows, costs(opts))
    harness.publish(
        "Cache admission: LRU and LRU+TinyLFU", lines,
        target="bench-hitratio", module="bench.hitratio", argv=argv, keep=not opts.no_record,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
