"""Where a visitor is, and what asking costs: kurz.geo's shipped data, per lookup and
per click.

    python -m bench.geo [--lookups 100000] [--rounds 5] [--no-record]

- lookups: ShippedLocator.country over `--lookups` random public addresses (IPv4 and
  IPv6 alike, from a fixed seed), in µs per lookup, median over rounds;
- clicks: kurz.analytics.events.Visits.event for `--lookups` clicks each from a new
  visitor (the worst case: a returning visitor's click is a dict lookup and asks
  nothing), with the country looked up against without, in alternating order within
  each round: the ratio is what the lookup adds to deriving a click;
- the pipeline: deriving those clicks and recording them (ClickStore.record on a fresh
  SQLite database, in batches of 10,000, as bench.record_cost does), CPU time per
  click, with countries against without: what the lookup adds to a click's whole cost,
  the countries' extra breakdown rows included.

The issue's goal: a lookup under 5 µs; a click's cost no more than 10% above today's.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import random
import statistics
import sys
import time
from collections.abc import Sequence

from bench import harness
from bench.harness import cpu_model, source_state
from kurz.analytics.events import DailySalt, Visits
from kurz.analytics.queue import batch_id
from kurz.analytics.store import ClickStore
from kurz.db import Database
from kurz.geo import ShippedLocator

GOAL_US = 5.0
GOAL_CLICK = 1.10
START = 1_796_000_000.0
UA = b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def addresses(n: int, seed: int = 7) -> list[str]:
    """`n` random global addresses, a quarter of them IPv6."""
    rng = random.Random(seed)
    found: list[str] = []
    while len(found) < n:
        if rng.random() < 0.25:
            ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv6Address(
                (0x2000 << 112) | rng.getrandbits(125)
            )
        else:
            ip = ipaddress.IPv4Address(rng.getrandbits(32))
        if ip.is_global:
            found.append(str(ip))
    return found


def lookups(locator: ShippedLocator, ips: list[str]) -> float:
    country = locator.country
    start = time.perf_counter()
    for ip in ips:
        country(ip)
    return (time.perf_counter() - start) / len(ips) * 1e6


def clicks(ips: list[str], *, locate: bool, locator: ShippedLocator) -> float:
    salt = DailySalt(clock=lambda: START)
    visits = Visits(salt, max_entries=len(ips) + 1, locate=locator.place if locate else None)
    event = visits.event
    start = time.perf_counter()
    for n, ip in enumerate(ips):
        event(n, START, ip, UA, None)
    return (time.perf_counter() - start) / len(ips) * 1e6


PIPELINE_CLICKS = 40_000
BATCH = 10_000


async def pipeline(ips: list[str], *, locate: bool, locator: ShippedLocator) -> float:
    """CPU µs per click: derive each (a new visitor's) and record them in batches."""
    async with harness.migrated_database("sqlite", "geo") as url:
        db = Database.from_url(url)
        try:
            store = ClickStore(db)
            salt = DailySalt(clock=lambda: START)
            visits = Visits(salt, max_entries=len(ips) + 1,
                            locate=locator.place if locate else None)  # fmt: skip
            began = time.process_time()
            events = [visits.event(1 + n % 1_000, START + n * 0.001, ip, UA, None)
                      for n, ip in enumerate(ips)]  # fmt: skip
            for start in range(0, len(events), BATCH):
                await store.record([(batch_id(), events[start : start + BATCH])])
            return (time.process_time() - began) / len(ips) * 1e6
        finally:
            await db.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(
        prog="python -m bench.geo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--lookups", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-record", action="store_true", help="do not append to the docs")
    args = parser.parse_args(argv)
    if args.lookups < 1_000 or args.rounds < 1:
        parser.error("--lookups >= 1000; --rounds >= 1")
    started = time.perf_counter()
    locator = ShippedLocator()
    locator.warm()
    loaded = time.perf_counter() - started
    ips = addresses(args.lookups)
    located = sum(locator.country(ip) is not None for ip in ips) / len(ips)
    per_lookup: list[float] = []
    without: list[float] = []
    with_: list[float] = []
    piped: dict[bool, list[float]] = {False: [], True: []}
    lookups(locator, ips[:1_000])  # warm-up
    for round_ in range(args.rounds):
        per_lookup.append(lookups(locator, ips))
        order = (False, True) if round_ % 2 == 0 else (True, False)
        for locate in order:
            (with_ if locate else without).append(clicks(ips, locate=locate, locator=locator))
        for locate in order:
            cost = asyncio.run(pipeline(ips[:PIPELINE_CLICKS], locate=locate, locator=locator))
            piped[locate].append(cost)
        print(
            f"  round {round_ + 1}: lookup {per_lookup[-1]:.2f} µs; a new visitor's click "
            f"{without[-1]:.2f} µs without, {with_[-1]:.2f} µs with; derived and recorded "
            f"{piped[False][-1]:.1f} µs without, {piped[True][-1]:.1f} µs with",
            flush=True,
        )
    lookup = statistics.median(per_lookup)
    ratio = statistics.median(w / o for w, o in zip(with_, without, strict=True))
    whole = statistics.median(w / o for w, o in zip(piped[True], piped[False], strict=True))
    lines = [
        f"- machine: {cpu_model()}, Python {sys.version.split()[0]}; {source_state()}",
        f"- {args.rounds} round(s) of {args.lookups:,} random global addresses (a quarter "
        f"IPv6); the shipped data placed {located:.0%} of them; loading it took "
        f"{loaded:.2f} s",
        "",
        "| | median |",
        "|---|---:|",
        f"| a country lookup | {lookup:.2f} µs |",
        f"| a new visitor's click, without a lookup | {statistics.median(without):.2f} µs |",
        f"| a new visitor's click, with one | {statistics.median(with_):.2f} µs |",
        f"| with/without | {ratio:.3f} |",
        f"| a new visitor's click derived and recorded (CPU), without | "
        f"{statistics.median(piped[False]):.1f} µs |",
        f"| the same, with countries | {statistics.median(piped[True]):.1f} µs |",
        f"| with/without | {whole:.3f} |",
        "",
        f"- a lookup under {GOAL_US:.0f} µs: {'met' if lookup < GOAL_US else 'NOT met'}",
        f"- a click's whole cost (derived and recorded) at most {GOAL_CLICK - 1:.0%} "
        f"dearer, for a new visitor: {'met' if whole <= GOAL_CLICK else 'NOT met'} "
        f"({whole - 1:+.1%}). A returning visitor's click, the usual case, asks nothing: "
        "its country is kept for the day with the rest of what it shares",
    ]
    harness.publish(
        "Where a visitor is (kurz.geo)", lines,
        target="bench-geo", module="bench.geo", argv=argv, keep=not args.no_record,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
