"""What the redirect limiter costs, in CPU instructions: a figure the shared host cannot blur.

    python -m bench.redirect_cost [--requests 4000] [--variants off,on]

Wall-clock rates on this shared machine swing by 15% from one run to the next, more
than the effect being measured. This bench counts instructions instead, with
valgrind's callgrind, which gives the same count on every run. Each variant runs
the HTTP protocol `kurz serve` runs (uvicorn's httptools protocol with kurz's head
limits, kurz.headlimit) in process, over a transport that discards what it is
given. The variant answers one cached redirect `--requests` times, after 200
warm-up requests. The same process is also counted with no measured requests,
and the difference is divided by `--requests`. PYTHONHASHSEED is fixed, so dict
layouts are the same in every run. As under `kurz serve` (kurz.app's lifespan), what
startup made is frozen out of the collector's sight and the youngest generation is
collected every kurz.app.YOUNG allocations: else a full collection of the whole heap,
which falls in the measured requests or not by how much startup allocated, adds its
cost to the figure.

Variants:
- off: the redirect limit is off.
- on: the redirect limit is on, with bench.redirect's never-refusing policy. Its
  client stays far from the limit, so its redirects go without the RateLimit fields
  (ADR 0003): the check alone.
- fields only: both fields are sent, from one fixed decision near the limit (none
  left), with no check: what a redirect near its limit pays for them.
- no head limit: as off, under uvicorn's own HttpToolsProtocol instead of
  kurz.headlimit's subclass; off against it is what the head limits cost (ADR 0013,
  goal within +1%).
- bare: bench.bare_app, the least an ASGI app can do, under the same protocol as
  off. bare/on is the kurz/bare rate `make bench-clicks` would see if the server's
  core did nothing else (no clicks written, no cache misses weighed).
- bare fields: bare, sending the two RateLimit fields kurz sends (fixed values): what
  the server alone charges for them, with no limiter behind them.
- two domains: as off, with two domains besides the default one, so that the Host
  header picks the domain (kurz.links.domains); the link is the default domain's.
- on a domain: as two domains, with the link on one of them and its Host asked for.
- targeted: as off, the link carrying bench.targeted's 8 targeting rules and 2
  variants chosen at random, visited by a desktop Chrome in American English, which
  no rule matches: every rule is asked, then a variant drawn (issue 21).

The counts are instructions, not time. Cache misses and branch mispredictions are
not weighed, so they rank costs but do not replace a run of bench.redirect.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.harness import BenchError, instructions
from bench.redirect import LIMITER_GOAL, NEVER_DENY
from bench.targeted import CHROME, RULES

VARIANTS = (
    "off",
    "on",
    "fields only",
    "no head limit",
    "bare",
    "bare fields",
    "two domains",
    "on a domain",
    "targeted",
)
DOMAINS = ("go.example", "b.example")
HEAD_LIMIT_GOAL = 0.01
WARMUP = 200
REQUEST = b"GET /abcdefg HTTP/1.1\r\nHost: kurz\r\nUser-Agent: bench\r\n\r\n"
ON_A_DOMAIN = REQUEST.replace(b"Host: kurz", b"Host: go.example")
# The targeted variant's visitor: what bench.targeted's wrk sends, which none of its
# link's 8 rules matches.
TARGETED_REQUEST = (
    b"GET /abcdefg HTTP/1.1\r\nHost: kurz\r\nUser-Agent: "
    + CHROME.encode()
    + b"\r\nAccept-Language: en-US,en;q=0.9\r\n\r\n"
)


class _Discard:
    """The least of an asyncio transport that uvicorn's protocol uses; counts writes."""

    def __init__(self) -> None:
        self.writes = 0
        self._until = 0
        self._waiter: asyncio.Future[None] | None = None

    def write(self, data: bytes) -> None:
        self.writes += 1
        if self._waiter is not None and self.writes >= self._until:
            self._waiter.set_result(None)
            self._waiter = None

    async def until(self, writes: int) -> None:
        """Wait until `writes` writes have been made in all."""
        if self.writes < writes:
            self._until = writes
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 5555)}.get(name, default)

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass


async def _serve(variant: str, requests: int, db: str) -> None:
    """Run in the child under callgrind: answer WARMUP + `requests` cached redirects."""
    from uvicorn.config import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    from kurz.app import YOUNG, create_app
    from kurz.bootstrap import build
    from kurz.config import Settings
    from kurz.headlimit import HeadLimits, protocol_class
    from kurz.links.target import Target

    unlimited = (
        "off",
        "no head limit",
        "bare",
        "bare fields",
        "two domains",
        "on a domain",
        "targeted",
    )
    policy = "off" if variant in unlimited else NEVER_DENY
    settings = Settings(
        database_url=f"sqlite:///{db}",
        ratelimit_redirect=policy,
        ratelimit_api="off",
        ratelimit_auth_fail="off",
        grpc_port=0,
    )
    app = create_app(build(settings))
    answering: Any = app
    if variant.startswith("bare"):
        from bench import bare_app

        vars(bare_app)["_targets"]["abcdefg"] = [
            (b"location", b"https://example.com/x"),
            (b"content-length", b"0"),
            *(bare_app._FIELDS if variant == "bare fields" else []),
        ]
        answering = bare_app.app
    if variant == "fields only":
        # Nothing left: a decision a redirect carries the fields for (ADR 0003).
        checked = app.visits.limits.redirect_now("127.0.0.1")
        assert checked is not None
        fixed = checked._replace(remaining=0)
        app.visits.limits.redirect_now = lambda ip: fixed  # type: ignore[method-assign]
    key, request = "abcdefg", REQUEST
    domain_id = 0
    if variant in ("two domains", "on a domain"):
        from types import SimpleNamespace

        app.visits.domains.use(
            SimpleNamespace(
                id=number,
                host=host,
                https=True,
                root_redirect=None,
                not_found_redirect=None,
                expired_redirect=None,
                used_up_redirect=None,
            )
            for number, host in enumerate(DOMAINS, 1)
        )
        if variant == "on a domain":
            domain_id, key, request = 1, "1/abcdefg", ON_A_DOMAIN
    target = Target(
        link_id=1,
        version=1,
        status=302,
        url="https://example.com/x",
        forward_query=False,
        starts_at=None,
        expires_at=None,
        max_visits=None,
    )
    if variant == "targeted":
        from kurz.links import conditions, variants

        target = dataclasses.replace(
            target,
            targeting=conditions.stored(
                [conditions.TargetingRule.model_validate(rule) for rule in RULES]
            ),
            variants_json=variants.stored(
                [("https://example.com/x", 1), ("https://example.com/y", 1)], "random"
            ),
        )
        request = TARGETED_REQUEST
    if domain_id:
        # Only when set: the figure before domains is counted with this bench too.
        target = dataclasses.replace(target, domain_id=domain_id)
    protocol_type: type[HttpToolsProtocol] = protocol_class(HeadLimits.of(settings))
    if variant == "no head limit":
        protocol_type = HttpToolsProtocol
    config = Config(
        app=answering,
        http=protocol_type,
        lifespan="off",
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )
    config.load()
    protocol = protocol_type(config, ServerState(), {})
    transport = _Discard()
    protocol.connection_made(transport)  # type: ignore[arg-type]

    async def answer(n: int) -> None:
        # Put again each time: the cache's TTL must not run out during a slow run.
        app.visits.l1.put(key, target)
        for _ in range(n):
            # A response is two writes: the head, then the (empty) body.
            expected = transport.writes + 2
            protocol.data_received(request)
            await transport.until(expected)

    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG, *gc.get_threshold()[1:])
    await answer(WARMUP)
    await answer(requests)


def count(variant: str, requests: int, db: str) -> int:
    """Instructions the whole child process ran (callgrind's "Collected")."""
    return instructions("bench.redirect_cost", variant, str(requests), db)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--child"]:
        variant, requests, db = argv[1], int(argv[2]), argv[3]
        import uvloop

        uvloop.run(_serve(variant, requests, db))
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m bench.redirect_cost",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--requests", type=int, default=4000, help="measured redirects")
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated, of {', '.join(VARIANTS)} (off is always run)",
    )
    args = parser.parse_args(argv)
    chosen = ["off", *(v for v in VARIANTS[1:] if v in args.variants.split(","))]
    if not shutil.which("valgrind"):
        print("bench failed: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 1
    per_request: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="kurz-cost-") as tmp:
        db = str(Path(tmp) / "kurz.db")
        try:
            for variant in chosen:
                base, loaded = count(variant, 0, db), count(variant, args.requests, db)
                per_request[variant] = (loaded - base) / args.requests
                print(
                    f"{variant:12} {per_request[variant]:9,.0f} instructions per redirect",
                    flush=True,
                )
        except BenchError as exc:
            print(f"bench failed: {exc}", file=sys.stderr)
            return 1
    off = per_request["off"]
    for variant in chosen[1:]:
        print(
            f"{variant:12} +{per_request[variant] - off:8,.0f}  off/{variant} = "
            f"{off / per_request[variant]:.3f}"
        )
    if "bare" in per_request:
        for variant in ("off", "on"):
            if variant in per_request:
                share = per_request["bare"] / per_request[variant]
                print(f"bare/{variant} by instructions = {share:.3f}")
    if "no head limit" in per_request:
        rise = off / per_request["no head limit"] - 1
        met = "met" if rise <= HEAD_LIMIT_GOAL else "NOT met"
        print(f"head limits: {rise:+.2%} instructions (goal <= +{HEAD_LIMIT_GOAL:.0%}: {met})")
    if "on" in per_request:
        met = "met" if off / per_request["on"] >= LIMITER_GOAL else "NOT met"
        print(
            f"limit on/off by instructions = {off / per_request['on']:.3f} "
            f"(goal >= {LIMITER_GOAL}: {met})"
        )
    draw(per_request, args.requests)
    return 0


def draw(per_request: dict[str, float], requests: int) -> None:
    """The instructions per cached redirect of each variant just counted, as bars
    (docs/designs/url-shortener.md)."""
    from bench import figures

    labels = {
        "off": "kurz, redirect limit off",
        "on": "kurz, redirect limit on",
        "fields only": "kurz, RateLimit fields, no check",
        "no head limit": "kurz under uvicorn's own protocol (no head limits)",
        "bare": "bare ASGI app",
        "bare fields": "bare ASGI app + RateLimit fields",
        "two domains": "kurz, two domains, link on the default",
        "on a domain": "kurz, two domains, link on one (Host)",
        "targeted": "kurz, 8 rules none matching + 2 variants",
    }
    names = list(per_request)[::-1]
    fig, ax = figures.new(
        "",
        f"CPU instructions per redirect, thousands (mean of {requests:,} after 200 warm-up)",
        "",
        width=8.0,
        height=1.1 + 0.32 * len(names),
    )
    fig.suptitle(
        "Instructions per cached redirect: kurz serve's HTTP protocol in process, SQLite "
        "(callgrind)",
        x=0.01, ha="left", fontsize=11,
    )  # fmt: skip
    values = [per_request[name] / 1000 for name in names]
    colors = [figures.COLORS[1] if name.startswith("bare") else figures.COLORS[0] for name in names]
    bars = ax.barh([labels.get(name, name) for name in names], values, color=colors)
    ax.bar_label(bars, labels=[f"{v:,.1f}k" for v in values], padding=3, fontsize=8)
    ax.set_xlim(0, max(values) * 1.15)
    ax.grid(axis="y", visible=False)
    figures.save(fig, "designs/figures/url-shortener-redirect-instructions.svg")


if __name__ == "__main__":
    sys.exit(main())
