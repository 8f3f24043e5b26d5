"""kurz.cache.HashRing: balance, keys moved, bounded loads, and lookups/s against uhashring.

    python -m bench.ring [--keys 100000] [--rounds 7] [--no-record]

Keys are seven-character base62 codes, as kurz makes them, on 10 nodes. Lookups/s:
kurz's node_for against uhashring's get_node in ketama mode, on the same nodes and
the same keys (both place every key alike; tests/unit/cache/test_ring.py checks it).
Each round times both in turn, order alternating, and the median over rounds is
reported, so that drift on the shared host hits both alike.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib
import random
import statistics
import string
import sys
import time
import timeit
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version

from uhashring import HashRing as UHashRing  # type: ignore[import-untyped]

from bench import figures, harness
from bench.harness import cpu_model, source_state
from kurz.cache import HashRing

NODES = tuple(f"10.0.0.{i}:6379" for i in range(1, 11))
POINTS = (4, 12, 40, 160, 500)
FACTORS = (1.25, 1.1, 1.05)


@dataclass(frozen=True)
class Options:
    keys: int
    rounds: int
    no_record: bool


@dataclass
class Seen:
    """What the run measured, kept for the figures: keys per node (in NODES order) by
    points per node; before and after an 11th node joins; the share moved when each
    node leaves; and per balance factor, the loads with bounded loads."""

    per_points: dict[int, list[int]]
    joined: tuple[list[int], list[int]] | None = None
    left: list[float] | None = None
    per_factor: dict[float, list[int]] | None = None


def short_codes(n: int, seed: int) -> list[str]:
    chars = "".join(random.Random(seed).choices(string.ascii_letters + string.digits, k=7 * n))
    return [chars[i : i + 7] for i in range(0, 7 * n, 7)]


def balance(keys: list[str], seen: Seen) -> list[str]:
    lines = [
        "| points per node | sd / mean | max / mean | min / mean |",
        "|---:|---:|---:|---:|",
    ]
    for points in POINTS:
        counts = Counter(map(HashRing(NODES, points=points).node_for, keys))
        per_node = [counts[node] for node in NODES]
        seen.per_points[points] = per_node
        mean = statistics.mean(per_node)
        sd = statistics.pstdev(per_node) / mean
        lines.append(
            f"| {points} | {sd:.3f} | {max(per_node) / mean:.3f} | {min(per_node) / mean:.3f} |"
        )
    return lines


def moved(keys: list[str], seen: Seen) -> list[str]:
    ring = HashRing(NODES)
    before = list(map(ring.node_for, keys))
    ring.add("10.0.0.11:6379")
    after = list(map(ring.node_for, keys))
    changes = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    counts_before, counts_after = Counter(before), Counter(after)
    seen.joined = (
        [counts_before[node] for node in NODES],
        [counts_after[node] for node in (*NODES, "10.0.0.11:6379")],
    )
    to_new = all(b == "10.0.0.11:6379" for _, b in changes)
    shares, from_gone = [], True
    for node in NODES:
        ring = HashRing(NODES)
        ring.remove(node)
        gone = [a for a, b in zip(before, map(ring.node_for, keys), strict=True) if a != b]
        shares.append(len(gone) / len(keys))
        from_gone = from_gone and set(gone) <= {node}
    n = len(NODES)
    seen.left = shares
    return [
        f"- adding an 11th node: {len(changes) / len(keys):.4f} of the keys moved "
        f"(1/(n+1) = {1 / (n + 1):.4f}), "
        f"{'all' if to_new else 'NOT all'} of them to the new node",
        f"- removing one of the {n} (each in turn): {statistics.mean(shares):.4f} moved on "
        f"average, {min(shares):.4f} to {max(shares):.4f} (1/n = {1 / n:.4f}), "
        f"{'all' if from_gone else 'NOT all'} of them the removed node's",
    ]


def bounded(keys: list[str], seen: Seen) -> list[str]:
    ring = HashRing(NODES)
    seen.per_factor = {}
    lines = [
        "| balance factor c | max / mean | keys not on their own node |",
        "|---:|---:|---:|",
    ]
    for factor in FACTORS:
        loads = dict.fromkeys(NODES, 0)
        displaced = 0
        for key in keys:
            node = ring.node_for_bounded(key, loads, factor)
            loads[node] += 1
            displaced += node != ring.node_for(key)
        peak = max(loads.values()) / statistics.mean(loads.values())
        seen.per_factor[factor] = [loads[node] for node in NODES]
        lines.append(f"| {factor} | {peak:.4f} | {displaced / len(keys):.2%} |")
    return lines


def lookups(opts: Options, keys: list[str]) -> dict[str, float]:
    ours, theirs = HashRing(NODES), UHashRing(list(NODES), hash_fn="ketama")
    contenders: dict[str, Callable[[str], object]] = {
        "kurz HashRing.node_for": ours.node_for,
        "uhashring get_node": theirs.get_node,
    }
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(opts.rounds):
        order = list(contenders)[:: 1 if round_ % 2 == 0 else -1]
        for name in order:
            lookup = contenders[name]
            gc.collect()
            start = time.perf_counter()
            for key in keys:
                lookup(key)
            rates[name].append(len(keys) / (time.perf_counter() - start))
    return {name: statistics.median(r) for name, r in rates.items()}


def md5_ns(md5: Callable[[bytes], hashlib._Hash], key: bytes = b"aZ3kQ9x") -> float:
    number = 200_000
    best = min(timeit.repeat(lambda: md5(key).digest(), number=number, repeat=5))
    return best / number * 1e9


def md5_costs() -> list[str]:
    """Where much of kurz's lookup saving is: md5 of a short key, OpenSSL's against CPython's."""
    try:
        builtin = f"{md5_ns(importlib.import_module('_md5').md5):.0f} ns"
    except ImportError:
        builtin = "not in this build"
    return [
        f"- md5 of a 7-byte key: hashlib's (OpenSSL) {md5_ns(hashlib.md5):.0f} ns, "
        f"CPython's own _md5 {builtin} (kurz uses the latter where the build has it)"
    ]


def plot(seen: Seen, keys: int) -> None:
    """The ring's figures, from what this run measured, for docs/designs/consistent-hashing.md."""
    mean = keys / len(NODES)
    # Balance: every node's keys over the mean, by points per node.
    fig, ax = figures.new(
        f"Keys per node / mean by points per node (kurz HashRing, {keys:,} keys, 10 nodes)",
        "points per node (log scale)", "keys on a node / mean",
    )  # fmt: skip
    points = sorted(seen.per_points)
    for i in range(len(NODES)):
        ax.plot(
            points, [seen.per_points[p][i] / mean for p in points], linestyle="none",
            marker="o", markersize=3, color=figures.COLORS[5], alpha=0.6,
            label="one node" if i == 0 else None,
        )  # fmt: skip
    ax.plot(points, [max(seen.per_points[p]) / mean for p in points], marker="^", label="max")
    ax.plot(points, [min(seen.per_points[p]) / mean for p in points], marker="v", label="min")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(points, [str(p) for p in points])
    ax.legend(loc="upper right")
    figures.save(fig, "designs/figures/consistent-hashing-balance.svg")

    # Keys moved: an 11th node joins; each of the ten leaves in turn.
    assert seen.joined is not None
    assert seen.left is not None
    fig, (join, leave) = figures.grid(1, 2, width=8.0, height=3.4)
    before, after = seen.joined
    labels = [str(i) for i in range(1, len(NODES) + 2)]
    xs = range(len(labels))
    join.bar([x - 0.2 for x in xs[:-1]], before, width=0.4, label="10 nodes")
    join.bar([x + 0.2 for x in xs], after, width=0.4, label="after node 11 joins")
    join.set_xticks(list(xs), labels)
    join.set_title(
        f"Node 11 joins: {after[-1]:,} keys ({after[-1] / keys:.1%}) move to it",
        loc="left", fontsize=10,
    )  # fmt: skip
    join.set_xlabel("node")
    join.set_ylabel("keys on the node")
    join.set_ylim(0, max(before) * 1.3)
    join.legend(loc="upper left", ncols=2, fontsize=8)
    leave.bar([x + 1 for x in range(len(NODES))], [share * 100 for share in seen.left])
    leave.axhline(100 / len(NODES), color="black", linewidth=0.8, linestyle="--", label="1/n")
    leave.set_xticks(range(1, len(NODES) + 1))
    leave.set_title("Each node leaves in turn: keys moved", loc="left", fontsize=10)
    leave.set_xlabel("node removed")
    leave.set_ylabel("keys moved (% of all)")
    leave.set_ylim(0, max(seen.left) * 130)
    leave.legend(loc="upper left", fontsize=8)
    fig.suptitle(
        f"Keys moved by a change of nodes (kurz HashRing, 160 points per node, {keys:,} keys)",
        x=0.01, ha="left", fontsize=11,
    )  # fmt: skip
    figures.save(fig, "designs/figures/consistent-hashing-moved.svg")

    # Bounded loads: keys per node, the ring alone and with each balance factor.
    assert seen.per_factor is not None
    fig, ax = figures.new(
        f"Keys per node with bounded loads (kurz HashRing, 160 points, {keys:,} keys)",
        "node", "keys on a node / mean",
    )  # fmt: skip
    series = {"ring alone": seen.per_points[160]}
    series |= {f"c = {c}": loads for c, loads in seen.per_factor.items()}
    width = 0.8 / len(series)
    for j, (name, loads) in enumerate(series.items()):
        offset = (j - (len(series) - 1) / 2) * width
        ax.bar([i + 1 + offset for i in range(len(NODES))], [n / mean for n in loads],
               width=width, label=name)  # fmt: skip
    for j, c in enumerate(seen.per_factor):
        ax.axhline(c, color=figures.COLORS[j + 1], linewidth=0.8, linestyle="--")
    ax.set_xticks(range(1, len(NODES) + 1))
    ax.set_ylim(0.8, 1.35)
    ax.legend(loc="upper left", ncols=4, fontsize=8)
    figures.save(fig, "designs/figures/consistent-hashing-bounded.svg")


def report(opts: Options, keys: list[str]) -> list[str]:
    seen = Seen(per_points={})
    lines = [
        f"- machine: {cpu_model()}, Python {sys.version.split()[0]}; {source_state()}",
        f"- {len(keys):,} seven-character base62 keys on {len(NODES)} nodes",
        "",
        "Balance: keys per node by points per node (ketama hashes 4 points a digest).",
        "",
        *balance(keys, seen),
        "",
        "Keys moved, at 160 points per node:",
        "",
        *moved(keys, seen),
        "",
        "Bounded loads (each key placed in turn with the loads so far), 160 points:",
        "",
        *bounded(keys, seen),
        "",
    ]
    plot(seen, len(keys))
    rates = lookups(opts, keys)
    ours, theirs = rates["kurz HashRing.node_for"], rates["uhashring get_node"]
    ratio = ours / theirs
    lines += [
        f"Lookups ({opts.rounds} rounds, order alternating, median), uhashring "
        f"{version('uhashring')} in ketama mode, same nodes and keys:",
        "",
        "| contender | lookups/s |",
        "|---|---:|",
        *(f"| {name} | {rate / 1e6:.2f} M |" for name, rate in rates.items()),
        "",
        f"- kurz over uhashring: {ratio:.2f}x (goal: at least 2x: "
        f"{'met' if ratio >= 2 else 'NOT met'})",
        *md5_costs(),
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(
        prog="python -m bench.ring",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--keys", type=int, default=100_000, help="keys placed and looked up")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the lookup timing")
    parser.add_argument("--no-record", action="store_true", help="do not append to the docs")
    args = parser.parse_args(argv)
    if args.keys < 1000 or args.rounds < 1:
        parser.error("--keys >= 1000, --rounds >= 1")
    opts = Options(args.keys, args.rounds, args.no_record)
    lines = report(opts, short_codes(opts.keys, seed=5))
    harness.publish(
        "Consistent-hash ring", lines,
        target="bench-ring", module="bench.ring", argv=argv, keep=not opts.no_record,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
