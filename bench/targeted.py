"""Cached links with 8 targeting rules and 2 variants, against plain links and the bare app.

    python -m bench.targeted [--duration 10] [--connections 64] [--rounds 3]

Issue 21's goal: a cached link with 8 rules and 2 A/B variants redirects at no less
than half the bare ASGI app's rate. Three servers, each alone and in turn (the order
rotates every round, so that drift on a shared machine hits all alike), under the same
wrk load as bench.redirect, over 1,000 links each:

- bare: bench.bare_app answering the links' codes;
- kurz: `kurz serve`, its links plain;
- kurz-targeted: `kurz serve`, every link with the 8 rules below and 2 variants chosen
  at random. wrk sends a desktop Chrome user agent and `Accept-Language: en-US`, which
  no rule matches, so every visit asks all 8 rules before it draws a variant: the
  most a visit of such a link costs.

The figures are medians of the per-round ratios. Instructions per cached redirect of
the same link are counted by `make bench-cost` (bench.rule_instructions), which the
machine's load cannot blur.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.harness import BenchError, Processes, ensure_wrk
from bench.redirect import Bench, Options, add_load_options, load_options

GOAL = 0.5
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
# Eight rules, none of which a desktop Chrome in American English from 127.0.0.1 meets.
RULES: list[dict[str, Any]] = [
    {"url": "https://apps.apple.com/app/id1", "conditions": [{"type": "device", "in": ["ios"]}]},
    {
        "url": "https://play.google.com/store/apps/details?id=x",
        "conditions": [{"type": "device", "in": ["android"]}],
    },
    {"url": "https://example.com/linux", "conditions": [{"type": "os", "in": ["Linux"]}]},
    {"url": "https://example.com/firefox", "conditions": [{"type": "browser", "in": ["Firefox"]}]},
    {
        "url": "https://example.com/de",
        "match": "any",
        "conditions": [
            {"type": "language", "in": ["de"]},
            {"type": "country", "in": ["DE", "AT", "CH"]},
        ],
    },
    {"url": "https://example.com/fr", "conditions": [{"type": "language", "in": ["fr"]}]},
    {
        "url": "https://example.com/campaign",
        "conditions": [{"type": "query", "param": "utm_campaign", "equals": "spring"}],
    },
    {
        "url": "https://example.com/2020",
        "conditions": [
            {"type": "time", "from": "2020-01-01T00:00:00Z", "until": "2021-01-01T00:00:00Z"}
        ],
    },
]


def targeted_link(i: int) -> dict[str, Any]:
    url = f"https://example.com/page/{i}"
    return {
        "url": url,
        "rules": RULES,
        "variants": [{"url": url, "weight": 1}, {"url": f"{url}?b", "weight": 1}],
    }


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.targeted",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_load_options(parser, duration=10)
    return load_options(parser, parser.parse_args(argv), ("uvicorn",))


def measure(opts: Options, wrk: str) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {"bare": [], "kurz": [], "kurz-targeted": []}
    with (
        tempfile.TemporaryDirectory(prefix="kurz-bench-plain-") as plain_dir,
        tempfile.TemporaryDirectory(prefix="kurz-bench-targeted-") as targeted_dir,
    ):
        procs = Processes(Path(plain_dir))
        try:
            plain = Bench(opts, wrk, Path(plain_dir), procs)
            plain_probe = plain.create_links()
            targeted = Bench(opts, wrk, Path(targeted_dir), procs)
            targeted.body = targeted_link
            targeted_probe = targeted.create_links()
            runs = [
                ("bare", plain, "bare", plain_probe),
                ("kurz", plain, "kurz", plain_probe),
                ("kurz-targeted", targeted, "kurz", targeted_probe),
            ]
            for round_ in range(1, opts.rounds + 1):
                shift = (round_ - 1) % len(runs)
                for name, bench, app, probe in runs[shift:] + runs[:shift]:
                    [sample] = bench.run("uvicorn", app, probe=probe)
                    rates[name].append(sample.rate)
                    print(f"round {round_}/{opts.rounds}  {name:14} {sample}", flush=True)
        finally:
            procs.stop_all()
    return rates


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ["BENCH_USER_AGENT"] = CHROME
    os.environ["BENCH_ACCEPT_LANGUAGE"] = "en-US,en;q=0.9"
    try:
        rates = measure(opts, ensure_wrk())
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1

    def share(app: str, base: str) -> float:
        return statistics.median(a / b for a, b in zip(rates[app], rates[base], strict=True))

    for name, values in rates.items():
        print(f"{name:14} median {statistics.median(values):,.0f} req/s")
    targeted = share("kurz-targeted", "bare")
    met = "met" if targeted >= GOAL else "NOT met"
    print(f"kurz/bare (plain links)            = {share('kurz', 'bare'):.2f}")
    print(f"kurz-targeted/bare (8 rules + 2 variants) = {targeted:.2f} (goal >= {GOAL}: {met})")
    print(f"kurz-targeted/kurz                 = {share('kurz-targeted', 'kurz'):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
