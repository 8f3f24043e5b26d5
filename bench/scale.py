"""Scale, by simulation: Zipf redirect traffic over 10^6..10^9 links through kurz's caches.

    python -m bench.scale [--quick] [--no-record] [--skew 1.0] [--rate 40000] ...

Prints, for the links and cache sizes given, the L1 hit ratio, the L2 hit ratio (of
L1 misses) and the SQL reads per second, from the model in bench/scale_model.py
(Che's approximation with TTLs; nothing is stored per link). Before that it checks
the model against real kurz.cache.LRUCaches fed a few million Zipf requests over
10^6 links. Then it measures a throwaway redis-server (bytes per cached link, GETs
per second) and turns both into the Redis capacity in docs/capacity.md.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import redis

from bench import harness
from bench.scale_model import (
    INF,
    Caches,
    Zipf,
    l2_entries_for,
    node_loss_excess,
    simulate,
    solve,
    solve_l1,
    solve_l2,
)

DAY = 86_400.0
# 100M new links a month (ARCHITECTURE.md): 38.6 a second on average.
NEW_LINKS_PER_SECOND = 100e6 / (30 * DAY)
PEAK_OVER_AVERAGE = 10  # 4k redirects/s on average, 40k/s at peak
MAXMEMORY_SHARE = 0.75  # of a node's RAM; the rest for fragmentation, rehashing, replication
HEADROOM = 0.5  # plan a Redis node at half the GETs/s measured


@dataclass(frozen=True, slots=True)
class Options:
    links: list[int]
    skew: float
    skews: list[float]
    rate: float
    processes: int
    l1_entries: int
    l1_ttl: float
    l2_entries: list[int]
    l2_ttl: float
    l2_ttls: list[float]
    sql_budget: float
    node_gb: float
    quick: bool
    redis: bool
    simulate: bool


@dataclass(frozen=True, slots=True)
class RedisFigures:
    version: str
    value_bytes: int
    entries: int
    bytes_plain: float
    bytes_expire: float
    gets: float
    gets_pipelined: float


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def seconds(value: float) -> str:
    return "inf" if value == INF else f"{value:,.1f} s"


def ttl_name(value: float) -> str:
    if value == INF:
        return "none"
    for unit, size in (("d", DAY), ("h", 3600.0), ("min", 60.0), ("s", 1.0)):
        if value >= size and value % size == 0:
            return f"{value / size:g} {unit}"
    return f"{value:g} s"


def validation(opts: Options) -> list[str]:
    """The model against real LRUCaches (the L2 an LRUCache too, so lazy expiry in both)."""
    links, requests = (10**5, 300_000) if opts.quick else (10**6, 2_000_000)
    # A slower simulated clock than the real rate: 100 s measured after 50 s warm-up,
    # several TTLs long, so that expiry reaches a steady state too.
    rate = requests / 100
    l1, l2 = (links // 100, links // 10)
    cases = [
        ("one LRU, no TTL", Caches(1, l1, INF, 0, INF)),
        ("P=4, L1 TTL 5 s, L2 no TTL", Caches(4, l1, 5.0, l2, INF, True)),
        ("P=8, L1 TTL 2 s, L2 TTL 10 s", Caches(8, 2 * l1, 2.0, l2 // 2, 10.0, True)),
    ]
    zipf = Zipf.over(links, opts.skew)
    lines = [
        f"Model against simulation: {links:,} links, s = {opts.skew}, {rate:,.0f} "
        f"requests/s on a simulated clock, {requests:,} requests measured after "
        f"{requests // 2:,} warm-up; L1 and L2 are kurz.cache.LRUCaches",
        "",
        "| case | L1 entries | L2 entries | L1 T_C | L2 T_C "
        "| L1 hit, simulated | L1 hit, model | L2 hit, simulated | L2 hit, model |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    worst = 0.0
    for name, caches in cases:
        started = time.perf_counter()
        sim = simulate(links, opts.skew, rate, caches, requests=requests, warmup=requests // 2)
        model = solve(zipf, rate, caches)
        tiers, has_l2 = model.tiers, caches.l2_entries > 0
        worst = max(worst, abs(sim.l1 - tiers.l1), abs(sim.l2 - tiers.l2) if has_l2 else 0)
        l2_time = seconds(model.l2_time) if has_l2 else ""
        l2_sim, l2_model = (pct(sim.l2), pct(tiers.l2)) if has_l2 else ("", "")
        lines.append(
            f"| {name} | {caches.l1_entries:,} | {caches.l2_entries:,} | "
            f"{seconds(model.l1_time)} | {l2_time} | {pct(sim.l1)} | {pct(tiers.l1)} | "
            f"{l2_sim} | {l2_model} |"
        )
        print(f"  simulated {name} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    met = "met" if worst < 0.01 else "NOT met"
    lines += ["", f"- largest difference: {100 * worst:.2f} percentage points (goal < 1: {met})"]
    return lines


def hit_table(opts: Options) -> list[str]:
    lines = [
        f"Hit ratios at {opts.rate:,.0f} redirects/s, s = {opts.skew}: {opts.processes} "
        f"processes with an L1 of {opts.l1_entries:,} entries, TTL {ttl_name(opts.l1_ttl)}; "
        f"L2 TTL {ttl_name(opts.l2_ttl)}",
        "",
        "| links | L2 entries | L1 hit | L2 hit (of L1 misses) | L2 GETs/s | SQL reads/s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for links in opts.links:
        zipf = Zipf.over(links, opts.skew)
        l1 = solve_l1(zipf, opts.rate, opts.processes, opts.l1_entries, opts.l1_ttl)
        for entries in [e for e in opts.l2_entries if e < links] + [links]:
            tiers = solve_l2(zipf, l1, entries, opts.l2_ttl, lazy_expiry=False).tiers
            lines.append(
                f"| 10^{round(math.log10(links))} | {entries:,} | {pct(tiers.l1)} | "
                f"{pct(tiers.l2)} | {opts.rate * (1 - tiers.l1):,.0f} | "
                f"{opts.rate * tiers.sql:,.0f} |"
            )
    return lines


def l1_table(opts: Options) -> list[str]:
    """What the number of processes, the L1's size and its TTL do to the L1 hit ratio."""
    zipf = Zipf.over(max(opts.links), opts.skew)
    sizes = (opts.l1_entries, 10 * opts.l1_entries)
    head = " | ".join(f"{n:,}, TTL {ttl_name(opts.l1_ttl)} | {n:,}, no TTL" for n in sizes)
    lines = [
        f"L1 hit ratio by processes, L1 entries per process and L1 TTL "
        f"({max(opts.links):,} links, s = {opts.skew}, {opts.rate:,.0f} redirects/s)",
        "",
        f"| processes | {head} |",
        "|---:|" + "---:|" * (2 * len(sizes)),
    ]
    for processes in (1, 4, 8, 16, 32):
        cells = [
            pct(solve_l1(zipf, opts.rate, processes, n, ttl).hit)
            for n in sizes
            for ttl in (opts.l1_ttl, INF)
        ]
        lines.append(f"| {processes} | " + " | ".join(cells) + " |")
    return lines


def needed_table(opts: Options, figures: RedisFigures | None) -> list[str]:
    links = max(opts.links)
    lines = [
        f"L2 entries needed for SQL reads < {opts.sql_budget:,.0f}/s ({links:,} links, "
        f"{opts.rate:,.0f} redirects/s, {opts.processes} processes, L1 "
        f"{opts.l1_entries:,} entries, TTL {ttl_name(opts.l1_ttl)}), by skew and L2 TTL"
        + ("; memory at the measured bytes per entry" if figures else ""),
        "",
        "| s | L1 hit | " + " | ".join(f"L2 TTL {ttl_name(t)}" for t in opts.l2_ttls) + " |",
        "|---:|---:|" + "---|" * len(opts.l2_ttls),
    ]
    for skew in opts.skews:
        zipf = Zipf.over(links, skew)
        l1 = solve_l1(zipf, opts.rate, opts.processes, opts.l1_entries, opts.l1_ttl)
        cells = []
        for ttl in opts.l2_ttls:
            entries = l2_entries_for(zipf, opts.rate, l1, ttl, opts.sql_budget)
            if entries is None:
                floor = opts.rate * solve_l2(zipf, l1, links, ttl, lazy_expiry=False).tiers.sql
                cells.append(f"impossible ({floor:,.0f}/s with every link cached)")
                continue
            cell = f"{entries / 1e6:,.0f} M ({entries / links:.0%} of links)"
            if figures:
                per = figures.bytes_plain if ttl == INF else figures.bytes_expire
                cell += f", {entries * per / 1e9:,.0f} GB"
            cells.append(cell)
        lines.append(f"| {skew} | {pct(l1.hit)} | " + " | ".join(cells) + " |")
    return lines


def link_value(rng: random.Random, link_id: int) -> str:
    """What L2 keeps for a link: its redirect fields as compact JSON, an ~80-character URL."""
    path = "".join(rng.choices(string.ascii_lowercase + string.digits, k=52))
    return json.dumps(
        {
            "id": link_id,
            "status": 302,
            "url": f"https://www.example.com/articles/{path}",
            "forward_query": False,
            "expires_at": None,
            "max_visits": None,
        },
        separators=(",", ":"),
    )


def bytes_per_entry(client: redis.Redis, entries: int, ttl: int | None) -> float:
    rng = random.Random(7)
    client.flushall()
    before = cast(dict[str, int], client.info("memory"))["used_memory"]
    pipe = client.pipeline(transaction=False)
    for i in range(entries):
        code = "".join(rng.choices(string.ascii_letters + string.digits, k=7))
        pipe.set(f"kurz:l:{code}", link_value(rng, 100_000_000 + i), ex=ttl)
        if i % 1_000 == 999:
            pipe.execute()
    pipe.execute()
    stored = cast(int, client.dbsize())
    after = cast(dict[str, int], client.info("memory"))["used_memory"]
    return (after - before) / stored


def gets_per_second(port: int, value_bytes: int, pipeline: int, requests: int) -> float:
    """redis-benchmark on the other CPU: 50 clients, random keys it SET first."""
    argv = ["redis-benchmark", "-p", str(port), "-t", "set,get", "-n", str(requests)]
    argv += ["-r", "100000", "-d", str(value_bytes), "-c", "50", "-P", str(pipeline), "--csv"]
    done = subprocess.run(harness.pinned(1, argv), capture_output=True, text=True, check=False)
    for row in done.stdout.splitlines():
        cells = [c.strip('"') for c in row.split(",")]
        if cells[0] == "GET":
            return float(cells[1])
    raise harness.BenchError(f"redis-benchmark gave no GET figure: {done.stderr.strip()}")


def measure_redis(opts: Options) -> RedisFigures:
    entries = 20_000 if opts.quick else 1_000_000
    rounds = 1 if opts.quick else 3
    requests = 200_000 if opts.quick else 1_000_000
    port = harness.free_port()
    with tempfile.TemporaryDirectory(prefix="kurz-scale-") as tmp:
        servers = harness.Processes(Path(tmp))
        try:
            servers.start("redis", harness.redis_server_argv(port), {}, Path(tmp))
            servers.wait_listening("redis", port)
            client = redis.Redis(port=port, socket_timeout=60)
            plain = bytes_per_entry(client, entries, None)
            expire = bytes_per_entry(client, entries, int(30 * DAY))
            client.flushall()
            client.close()
            value = len(link_value(random.Random(1), 100_000_000))
            single = [gets_per_second(port, value, 1, requests) for _ in range(rounds)]
            piped = [gets_per_second(port, value, 16, 2 * requests) for _ in range(rounds)]
        finally:
            servers.stop_all()
    return RedisFigures(
        harness.redis_server_version(),
        value,
        entries,
        plain,
        expire,
        statistics.median(single),
        statistics.median(piped),
    )


def redis_lines(figures: RedisFigures) -> list[str]:
    return [
        f"Redis, measured ({figures.version}, loopback, server on CPU 0, client on CPU 1):",
        "",
        f"- memory: {figures.entries:,} keys `kurz:l:<7 chars>` with {figures.value_bytes}-byte "
        f"JSON values: {figures.bytes_plain:.0f} bytes per entry (INFO used_memory delta), "
        f"{figures.bytes_expire:.0f} with an EXPIRE on each",
        f"- GET throughput, redis-benchmark, 50 clients, {figures.value_bytes}-byte values: "
        f"{figures.gets:,.0f}/s unpipelined, {figures.gets_pipelined:,.0f}/s pipelined "
        "(16 per round trip); median of rounds",
    ]


def capacity(opts: Options, figures: RedisFigures) -> list[str]:
    links = max(opts.links)
    zipf = Zipf.over(links, opts.skew)
    l1 = solve_l1(zipf, opts.rate, opts.processes, opts.l1_entries, opts.l1_ttl)
    needed = l2_entries_for(zipf, opts.rate, l1, opts.l2_ttl, opts.sql_budget)
    if needed is None:
        return [f"- no L2 size keeps SQL under {opts.sql_budget:,.0f}/s with these settings"]
    per_entry = figures.bytes_plain if opts.l2_ttl == INF else figures.bytes_expire
    usable = opts.node_gb * 1e9 * MAXMEMORY_SHARE
    for_memory = math.ceil(needed * per_entry / usable)
    gets = opts.rate * (1 - l1.hit)
    for_ops = math.ceil((gets + opts.sql_budget) / (figures.gets * HEADROOM))
    # One node more than memory needs: with one down, the rest still hold `needed`.
    nodes = max(for_memory + 1, for_ops)
    held = min(links, int(nodes * usable / per_entry))
    solved = solve_l2(zipf, l1, held, opts.l2_ttl, lazy_expiry=False)
    degraded = solve_l2(zipf, l1, int(held * (nodes - 1) / nodes), opts.l2_ttl, lazy_expiry=False)
    baseline = opts.rate * solved.tiers.sql  # also the SETs/s that refill L2
    per_node = (gets + baseline + NEW_LINKS_PER_SECOND * PEAK_OVER_AVERAGE) / nodes
    # Without replicas, losing one of n nodes costs 1/n of L2's hits at once.
    spare = opts.sql_budget - baseline
    unreplicated = math.ceil(solved.l2_hits_per_second(zipf) / spare) if spare > 0 else 0
    after = (0.0, 10.0, 60.0, 600.0, 3600.0)
    excess = {t: node_loss_excess(zipf, solved, 1 / nodes, t) for t in after}
    steps = ", ".join(f"{ttl_name(t) if t else 'at once'}: +{v:,.0f}/s" for t, v in excess.items())
    return [
        f"Capacity ({links:,} links, s = {opts.skew}, {opts.rate:,.0f} redirects/s, "
        f"{opts.processes} processes, L1 {opts.l1_entries:,} entries TTL "
        f"{ttl_name(opts.l1_ttl)}, L2 TTL {ttl_name(opts.l2_ttl)}, SQL budget "
        f"{opts.sql_budget:,.0f}/s):",
        "",
        f"- L2 must hold {needed:,} entries ({needed / links:.0%} of links): "
        f"{needed * per_entry / 1e9:,.0f} GB at {per_entry:.0f} bytes each",
        f"- nodes for memory: {for_memory} of {opts.node_gb:g} GB (maxmemory "
        f"{MAXMEMORY_SHARE:.0%}, {usable / 1e9:.0f} GB); nodes for throughput: {for_ops} "
        f"({gets:,.0f} GETs/s + up to {opts.sql_budget:,.0f} SETs/s against "
        f"{figures.gets:,.0f} GETs/s measured, planned at {HEADROOM:.0%})",
        f"- recommended: {nodes} nodes ({nodes * opts.node_gb:g} GB RAM)"
        f"{', one more than memory needs' if nodes == for_memory + 1 else ''}; "
        f"they hold {held:,} entries: L2 hit {pct(solved.tiers.l2)}, SQL "
        f"{baseline:,.0f} reads/s, about {per_node:,.0f} commands/s per node",
        f"- one node lost: its 1/{nodes} of cached links reload from SQL on their next request "
        f"(extra SQL reads {steps}); once reloaded, {nodes - 1} nodes give "
        f"{opts.rate * degraded.tiers.sql:,.0f} reads/s",
        f"- under the budget through a node loss: a replica per node, promoted on failure "
        f"with its keys ({2 * nodes} Redis processes, {2 * nodes * opts.node_gb:g} GB); "
        f"without replicas it would take {unreplicated} nodes",
        f"- new links: {NEW_LINKS_PER_SECOND:.0f}/s on average "
        f"({NEW_LINKS_PER_SECOND * PEAK_OVER_AVERAGE:.0f}/s at a 10x peak); each one's first "
        "request misses L2 unless creating a link writes it to L2",
    ]


def parse(argv: Sequence[str]) -> tuple[Options, bool]:
    def numbers(text: str) -> list[float]:
        return [INF if t.strip() in ("inf", "none") else float(t) for t in text.split(",")]

    parser = argparse.ArgumentParser(
        prog="python -m bench.scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--links", default="1e6,1e7,1e8,1e9", help="link counts, comma-separated")
    add("--skew", type=float, default=1.0, help="Zipf exponent s of the main tables")
    add("--skews", default="0.8,0.9,1.0,1.1,1.2", help="exponents for the L2-size table")
    add("--rate", type=float, default=40_000, help="redirects per second (peak)")
    add("--processes", type=int, default=8, help="kurz processes, each with its own L1")
    add("--l1-entries", type=int, default=100_000, help="L1 entries per process")
    add("--l1-ttl", type=float, default=30.0, help="L1 TTL, seconds")
    add("--l2-entries", default="1e6,1e7,1e8,3e8", help="L2 sizes (all nodes), comma-separated")
    add("--l2-ttl", default="none", help="L2 TTL, seconds, or none")
    add("--l2-ttls", default="86400,604800,2592000,none", help="L2 TTLs for the L2-size table")
    add("--sql-budget", type=float, default=1_000, help="SQL reads per second allowed")
    add("--node-gb", type=float, default=64, help="RAM of one Redis node, GB")
    add("--quick", action="store_true", help="smaller simulation and Redis runs")
    add("--no-redis", action="store_true", help="skip the Redis measurements and capacity")
    add("--no-simulate", action="store_true", help="skip the check against LRUCaches")
    add("--no-record", action="store_true", help="do not append to docs/benchmarks/history.md")
    args = parser.parse_args(argv)
    opts = Options(
        links=[round(x) for x in numbers(args.links)],
        skew=args.skew,
        skews=numbers(args.skews),
        rate=args.rate,
        processes=args.processes,
        l1_entries=args.l1_entries,
        l1_ttl=args.l1_ttl,
        l2_entries=[round(x) for x in numbers(args.l2_entries)],
        l2_ttl=numbers(args.l2_ttl)[0],
        l2_ttls=numbers(args.l2_ttls),
        sql_budget=args.sql_budget,
        node_gb=args.node_gb,
        quick=args.quick,
        redis=not args.no_redis,
        simulate=not args.no_simulate,
    )
    if min(opts.links) < 1 or opts.processes < 1 or opts.rate <= 0:
        parser.error("--links, --processes and --rate must be positive")
    return opts, args.no_record


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    opts, no_record = parse(argv)
    lines = [
        f"- machine: {harness.cpu_model()}, Python {sys.version.split()[0]}; "
        f"{harness.source_state()}",
        "- model: Che's approximation with non-renewed TTLs, L2 fed the L1s' misses as "
        "Poisson (bench/scale_model.py, docs/capacity.md); IRM Zipf traffic",
        "",
    ]
    if opts.simulate:
        lines += [*validation(opts), ""]
    lines += [*hit_table(opts), "", *l1_table(opts), ""]
    figures = measure_redis(opts) if opts.redis else None
    lines += [*needed_table(opts, figures), ""]
    if figures:
        lines += [*redis_lines(figures), "", *capacity(opts, figures)]
    harness.publish(
        "Scale, by simulation", lines,
        target="bench-scale", module="bench.scale", argv=argv, keep=not no_record,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
