"""What targeting rules cost a redirect, in CPU instructions (callgrind).

    python -m bench.rule_instructions [--visits 20000] [--kinds device,os,...]

For each kind of condition, a link with 1 rule and one with 8 rules of that kind,
none of which matches (so every rule is asked), is visited `--visits` times the way
the fast path asks (kurz.links.visit.Visits.where: a Traits over the request's scope,
then the compiled rules' `pick`). Each child process builds every link, so the
difference from a run with no visits is the visits alone. It prints the cost of a
visit with one rule (which includes reading the headers and, for a device, looking
the user agent up in the classifier's cache) and of each rule after the first. The
request is the same each time: the user agent, Accept-Language and address caches
are warm, as they are for real traffic. Needs valgrind.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from typing import Any

import orjson

from bench.harness import BenchError, instructions

KINDS: dict[str, dict[str, Any]] = {
    "device": {"type": "device", "in": ["android"]},
    "os": {"type": "os", "in": ["Android"]},
    "language": {"type": "language", "in": ["de"]},
    "country": {"type": "country", "in": ["DE"]},
    "query": {"type": "query", "param": "ref", "equals": "mail"},
    "time": {"type": "time", "until": "2000-01-01T00:00:00Z"},
}
SIZES = (1, 8)
SCOPE = {
    "type": "http",
    "method": "GET",
    "path": "/abc",
    "query_string": b"utm_source=x",
    "client": ("81.2.69.142", 40000),
    "headers": [
        (b"host", b"kurz.example"),
        (
            b"user-agent",
            b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
            b"(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        ),
        (b"accept", b"text/html"),
        (b"accept-language", b"en-GB,en;q=0.9"),
    ],
}


def child(kind: str, size: int, visits: int) -> None:
    from kurz.geo import ShippedLocator
    from kurz.links.target import Target
    from kurz.links.traits import Places, Traits

    locator = ShippedLocator()
    country = locator.country
    places = Places(locate=lambda ip: (country(ip), None))
    targets = {
        (name, n): Target(
            link_id=1,
            version=1,
            status=302,
            url="https://example.com/",
            forward_query=False,
            starts_at=None,
            expires_at=None,
            max_visits=None,
            targeting=orjson.dumps(
                [{"url": f"https://example.com/{i}", "conditions": [spec]} for i in range(n)]
            ).decode(),
        )
        for name, spec in KINDS.items()
        for n in SIZES
    }
    # Once before counting, as a warm process has: the classifier and the caches.
    for target in targets.values():
        assert target.routes is not None
        assert target.routes.pick(Traits(places, at=1e9, ip="81.2.69.142", scope=SCOPE)) == 0
    if not visits:
        return
    routes = targets[kind, size].routes
    assert routes is not None
    for _ in range(visits):
        routes.pick(Traits(places, at=1e9, ip="81.2.69.142", scope=SCOPE))


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--child"]:
        child(argv[1], int(argv[2]), int(argv[3]))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.rule_instructions", description=__doc__)
    parser.add_argument("--visits", type=int, default=20_000, help="visits counted per run")
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help=f"comma-separated, of {', '.join(KINDS)}"
    )
    args = parser.parse_args(argv)
    kinds = [kind for kind in KINDS if kind in args.kinds.split(",")]
    if not kinds:
        parser.error(f"--kinds takes some of {', '.join(KINDS)}")
    if not shutil.which("valgrind"):
        print("bench failed: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 1
    module = "bench.rule_instructions"
    try:
        base = instructions(module, "device", "1", "0")
        print(f"{'condition':<10} {'1 rule':>10} {'each more':>10}  (instructions per visit)")
        counted: dict[str, tuple[float, float]] = {}
        for kind in kinds:
            one, eight = (
                (instructions(module, kind, str(n), str(args.visits)) - base) / args.visits
                for n in SIZES
            )
            counted[kind] = (one, eight)
            print(f"{kind:<10} {one:>10,.0f} {(eight - one) / (SIZES[1] - 1):>10,.0f}")
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    draw(counted, args.visits)
    return 0


def draw(counted: dict[str, tuple[float, float]], visits: int) -> None:
    """Instructions per visit with 1 and with 8 rules of each kind, none matching
    (docs/designs/redirect-pipeline.md)."""
    from bench import figures

    fig, ax = figures.new(
        f"Targeting rules: instructions per visit, no rule matching (callgrind, {visits:,} visits)",
        "condition kind of every rule",
        "CPU instructions per visit",
    )
    kinds = list(counted)
    width = 0.38
    for i, size in enumerate(SIZES):
        xs = [k + (i - 0.5) * width for k in range(len(kinds))]
        values = [counted[kind][i] for kind in kinds]
        bars = ax.bar(xs, values, width, label=f"{size} rule{'s' if size > 1 else ''}")
        ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], padding=2, fontsize=7)
    ax.set_xticks(range(len(kinds)), kinds)
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper left")
    figures.save(fig, "designs/figures/redirect-pipeline-rule-instructions.svg")


if __name__ == "__main__":
    sys.exit(main())
