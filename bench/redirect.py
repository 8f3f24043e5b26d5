"""Redirect throughput: kurz against a bare ASGI app under the same server, with wrk.

    python -m bench.redirect [--duration 10] [--connections 64] [--rounds 3]
                             [--servers uvicorn,granian] [--split] [--no-record]

kurz is started as a user starts it (`kurz serve`, a fresh SQLite file), given an API
key and 1,000 links through its API, then `GET /{code}` is measured over those codes.
The bare app (bench/bare_app.py) answers the same codes under the same server and
settings; kurz/bare is what kurz itself costs. bare and kurz run one at a time; each
run gets a fresh server process, runs are interleaved and the median is reported, so
that drift on a shared machine hits both alike.

The limiter's cost is measured on a pair of kurz servers run at the same time, on
the same CPU, each under its own wrk: one with its redirect rate limit off, one with
a policy too large to ever refuse (kurz-rl), so that every redirect pays for a full
check (in process) and still answers 302. kurz-rl/kurz, by rate and by server CPU
per request, is what the limiter costs. With --split, the bare app runs as a pair
too, with and without two fixed RateLimit fields: what the fields alone cost.

With --tiers, two more kurz servers run as a pair: one with L1 only (the default),
one with L1 off and L2 on three redis-servers this run starts, so that every
redirect reads L2: kurz-l2/kurz-l1 is what a read from L2 costs against one from L1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

from bench.harness import (
    BIN,
    BenchError,
    Processes,
    Sample,
    command_line,
    cpu_model,
    ensure_wrk,
    free_port,
    kurz_cli,
    pinned,
    redis_server_argv,
    run_wrk,
    source_state,
)
from kurz.config import Settings

ROOT = Path(__file__).resolve().parents[1]
LUA = Path(__file__).with_name("redirect.lua")
RECORD = ROOT / "docs" / "benchmarks" / "history.md"  # the log; the summary: docs/benchmarks.md
SERVERS = ("uvicorn", "granian")
# The limiter's cost is measured on a pair of servers run at the same time, on the
# same CPU, under two wrk processes: whatever the shared host does to one run, it
# does to the other (see Bench.run_pair).
PAIR = ("kurz (pair)", "kurz-rl (pair)")
# With --split: the same two fields on the bare app, without any check, to tell what
# the fields cost from what the check costs.
FIELDS_PAIR = ("bare (pair)", "bare+fields (pair)")
# With --tiers: every redirect from L1, against every redirect from L2 (L1 off).
TIERS_PAIR = ("kurz-l1 (pair)", "kurz-l2 (pair)")
L2_NODES = 3
APPS = ("bare", "kurz", *PAIR)
LINKS = 1_000
GOAL = 0.6
# The limiter may cost at most 15% of kurz's redirect rate.
LIMITER_GOAL = 0.85
# Checked on every redirect and never refusing one: a burst of 10^9. The rate is not
# 10^9/s: its 1 ns interval is below the resolution of epoch seconds as floats (about
# 0.24 us), so the bucket would never move and no key be kept, a cheaper path than any
# real policy takes. At 10 us per token every check moves the bucket and keeps it.
NEVER_DENY = "10000/1s;burst=1000000000"
# A code no bench creates: its 404 shows whether the redirect limit is checked.
UNKNOWN_CODE = "zz9nolink"
RATELIMIT_REDIRECT = {"kurz": "off", PAIR[0]: "off", PAIR[1]: NEVER_DENY}
BARE = "bench.bare_app:app"


@dataclass(frozen=True, slots=True)
class Options:
    duration: int
    warmup: int
    connections: int
    threads: int
    rounds: int
    servers: tuple[str, ...]
    record: bool
    split: bool
    tiers: bool = False

    @property
    def apps(self) -> tuple[str, ...]:
        return (
            *APPS,
            *(FIELDS_PAIR if self.split else ()),
            *(TIERS_PAIR if self.tiers else ()),
        )


@dataclass(frozen=True, slots=True)
class Result:
    server: str
    app: str
    samples: list[Sample]

    @property
    def rate(self) -> float:
        return statistics.median(s.rate for s in self.samples)

    @property
    def p50_ms(self) -> float:
        return statistics.median(s.p50_ms for s in self.samples)

    @property
    def p99_ms(self) -> float:
        return statistics.median(s.p99_ms for s in self.samples)

    @property
    def cpu_us(self) -> float:
        return statistics.median(s.cpu_us for s in self.samples)


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.redirect",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_load_options(parser, duration=10)
    parser.add_argument("--servers", default="uvicorn", help="comma list of: uvicorn,granian")
    parser.add_argument(
        "--split",
        action="store_true",
        help="also run the bare app with and without two fixed RateLimit fields, as a pair",
    )
    parser.add_argument(
        "--tiers",
        action="store_true",
        help="also run kurz with L1 only against kurz with L2 only (3 redis-servers), as a pair",
    )
    args = parser.parse_args(argv)
    servers = tuple(s.strip() for s in args.servers.split(",") if s.strip())
    if not servers or any(s not in SERVERS for s in servers):
        parser.error(f"--servers takes a comma list of {', '.join(SERVERS)}")
    return load_options(parser, args, servers, split=args.split, tiers=args.tiers)


def add_load_options(parser: argparse.ArgumentParser, *, duration: int) -> None:
    """The wrk load every redirect benchmark takes: how long, how hard, how often."""
    parser.add_argument("--duration", type=int, default=duration, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up before each")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs per app")
    parser.add_argument("--no-record", action="store_true", help="do not append to the docs")


def load_options(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    servers: tuple[str, ...],
    *,
    split: bool = False,
    tiers: bool = False,
) -> Options:
    """Options from what add_load_options parsed; a usage error if they cannot work."""
    if min(args.duration, args.warmup, args.rounds, args.threads) < 1:
        parser.error("--duration, --warmup, --rounds and --threads must be at least 1")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")
    return Options(
        args.duration,
        args.warmup,
        args.connections,
        args.threads,
        args.rounds,
        servers,
        not args.no_record,
        split,
        tiers,
    )


def plain_link(i: int) -> dict[str, Any]:
    """The body of the i-th link the bench makes: a URL, nothing else."""
    return {"url": f"https://example.com/page/{i}"}


def create_links(
    base: str, key: str, body: Callable[[int], dict[str, Any]] = plain_link
) -> dict[str, str]:
    links: dict[str, str] = {}
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        for i in range(LINKS):
            made = body(i)
            url = made["url"]
            response = client.post("/api/v1/links", json=made)
            if response.status_code != 201:
                raise BenchError(f"POST /api/v1/links: {response.status_code} {response.text}")
            links[response.json()["code"]] = url
    return links


def server_argv(server: str, app: str, port: int) -> list[str]:
    """One worker, uvloop, no access log, no server header (granian 2.8 always sends one)."""
    if server == "uvicorn" and not app.startswith("bare"):
        # kurz serve sets the same itself: uvloop, httptools, no access log or server header.
        return [str(BIN / "kurz"), "serve"]
    common = f"--host 127.0.0.1 --port {port} --workers 1 --loop uvloop --no-access-log"
    if server == "uvicorn":
        extra = "--http httptools --lifespan on --no-server-header --no-proxy-headers"
        return [sys.executable, "-m", "uvicorn", *common.split(), *extra.split(), BARE]
    target = [BARE] if app.startswith("bare") else ["--factory", "bench.apps:kurz_app"]
    return [str(BIN / "granian"), "--interface", "asgi", *common.split(), *target]


def measure_once(wrk: str, url: str, paths: Path, seconds: int, opts: Options) -> Sample:
    figures = run_wrk(
        wrk,
        url,
        LUA,
        [str(paths)],
        seconds=seconds,
        threads=opts.threads,
        connections=opts.connections,
    )
    if figures["non_302"] or figures["redirects"] != figures["requests"]:
        raise BenchError(f"{url}: {figures['non_302']} responses were not 302: {figures}")
    socket_errors = sum(
        figures[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
    )
    seconds_run = figures["duration_us"] / 1e6
    p50, p99 = figures["p50_us"] / 1e3, figures["p99_us"] / 1e3
    return Sample(figures["requests"], seconds_run, p50, p99, socket_errors)


class Bench:
    """One run: a temp dir holding kurz's database and the links, and the servers."""

    def __init__(self, opts: Options, wrk: str, tmp: Path, procs: Processes) -> None:
        self.opts = opts
        self.wrk = wrk
        self.tmp = tmp
        self.procs = procs
        self.links = tmp / "links.json"
        self.paths = tmp / "paths.txt"
        # With --tiers: the L2 nodes' URLs, once started.
        self.cache_nodes: list[str] = []
        # What each link is made with (bench.targeted gives them rules and variants).
        self.body: Callable[[int], dict[str, Any]] = plain_link

    def start_cache_nodes(self) -> None:
        for i in range(L2_NODES):
            port = free_port()
            name = f"redis-{i}"
            self.procs.start(name, redis_server_argv(port), dict(os.environ), self.tmp)
            self.procs.wait_listening(name, port)
            self.cache_nodes.append(f"redis://127.0.0.1:{port}/0")

    def tier_env(self, app: str) -> dict[str, str]:
        if app != TIERS_PAIR[1]:
            return {}
        return {"KURZ_CACHE_NODES": ",".join(self.cache_nodes), "KURZ_REDIRECT_CACHE_SIZE": "0"}

    def env(self, port: int, ratelimit_redirect: str = "off") -> dict[str, str]:
        return {
            **os.environ,
            "KURZ_DATABASE_URL": f"sqlite:///{self.tmp}/kurz.db",
            "KURZ_PORT": str(port),
            "KURZ_HOST": "127.0.0.1",
            # HTTP is measured here; several servers run at once, none needs gRPC.
            "KURZ_GRPC_PORT": "0",
            # Limits in process: no KURZ_REDIS_URL from the caller's environment.
            "KURZ_REDIS_URL": "",
            "KURZ_RATELIMIT_REDIRECT": ratelimit_redirect,
        }

    def create_links(self) -> str:
        """Key and links made as a user makes them: the CLI, then `kurz serve`'s API."""
        port = free_port()
        # 1,000 links in a few seconds from one key: far over the API's default limit.
        env = {**self.env(port), "KURZ_RATELIMIT_API": "off"}
        kurz_cli(["migrate"], env, self.tmp)
        key = kurz_cli(["keys", "create", "--name", "bench"], env, self.tmp)
        base = f"http://127.0.0.1:{port}"
        self.procs.start("setup", server_argv("uvicorn", "kurz", port), env, self.tmp)
        try:
            self.procs.wait_ready("setup", f"{base}/healthz", 200)
            links = create_links(base, key, self.body)
        finally:
            self.procs.stop("setup")
        self.links.write_text(json.dumps(links))
        self.paths.write_text("".join(f"/{code}\n" for code in links))
        return next(iter(links))

    def run(self, server: str, *apps: str, probe: str) -> list[Sample]:
        """Fresh servers, one per app, measured at the same time (each by its own wrk).

        The warm-up fills kurz's cache, and the measured run ends before that cache's
        TTL (30 s by default) expires the whole of it at once. Servers run together
        share CPU 0 and their wrk processes CPU 1, so neither gets an easier moment
        of the shared host than the other.
        """
        urls: dict[str, str] = {}
        try:
            for app in apps:
                name, port = _slug(server, app), free_port()
                env = {
                    **self.env(port, RATELIMIT_REDIRECT.get(app, "off")),
                    "BENCH_LINKS": str(self.links),
                    "BENCH_FIELDS": "1" if app == FIELDS_PAIR[1] else "0",
                    "PYTHONPATH": str(ROOT),
                    **self.tier_env(app),
                }
                self.procs.start(name, server_argv(server, app, port), env, self.tmp)
                urls[app] = f"http://127.0.0.1:{port}"
            paths = self.paths.read_text().split()
            for app, url in urls.items():
                self.procs.wait_ready(_slug(server, app), f"{url}/{probe}", 302)
                check_limiter(app, url)
                fill_cache(url, paths)
            with ThreadPoolExecutor(len(apps)) as pool:

                def together(seconds: int) -> list[Sample]:
                    runs = [
                        pool.submit(measure_once, self.wrk, url, self.paths, seconds, self.opts)
                        for url in urls.values()
                    ]
                    return [run.result() for run in runs]

                together(self.opts.warmup)
                before = [self.procs.cpu_seconds(_slug(server, app)) for app in apps]
                samples = together(self.opts.duration)
                after = [self.procs.cpu_seconds(_slug(server, app)) for app in apps]
            return [
                dataclasses.replace(sample, server_cpu_seconds=end - start)
                for sample, start, end in zip(samples, before, after, strict=True)
            ]
        finally:
            for app in urls:
                self.procs.stop(_slug(server, app))


def fill_cache(url: str, paths: list[str]) -> None:
    """Follow every link once, so that the runs measure cache hits only (the bare
    app has no cache, and answers these as it answers the rest)."""
    with httpx.Client(base_url=url, timeout=10) as client:
        for path in paths:
            status = client.get(path).status_code
            if status != 302:
                raise BenchError(f"{url}{path}: {status} while filling the cache")


def _slug(server: str, app: str) -> str:
    return f"{server}-{app}".replace(" (pair)", "-pair")


def limit_fields(url: str) -> list[str]:
    """The RateLimit fields on the 404 of a code no bench creates, from the server at `url`.

    A redirect far from its limit goes without them (ADR 0003); every other answer of
    a checked policy carries them, so a 404 tells whether the limiter is checking.
    """
    unknown = f"{url}/{UNKNOWN_CODE}"
    response = httpx.get(unknown, timeout=5)
    if response.status_code != 404:
        raise BenchError(f"{unknown}: {response.status_code}, expected 404")
    return response.headers.get_list("ratelimit")


def check_limiter(app: str, url: str) -> None:
    """kurz-rl must be checking (a 404 carries the RateLimit field), kurz not."""
    if app not in RATELIMIT_REDIRECT:
        return
    fields = limit_fields(url)
    if RATELIMIT_REDIRECT[app] != "off" and not fields:
        raise BenchError(f"{app}: no RateLimit field on {url}: is the limiter running?")
    if RATELIMIT_REDIRECT[app] == "off" and fields:
        raise BenchError(f"{app}: RateLimit {fields} on {url} with KURZ_RATELIMIT_REDIRECT=off")


def measure(opts: Options, wrk: str) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="kurz-bench-") as tmp:
        procs = Processes(Path(tmp))
        try:
            bench = Bench(opts, wrk, Path(tmp), procs)
            probe = bench.create_links()
            if opts.tiers:
                bench.start_cache_nodes()
            samples: dict[tuple[str, str], list[Sample]] = {
                (server, app): [] for server in opts.servers for app in opts.apps
            }
            for round_ in range(1, opts.rounds + 1):
                for server, apps in order(opts.servers, round_, opts.split, opts.tiers):
                    for app, sample in zip(
                        apps, bench.run(server, *apps, probe=probe), strict=True
                    ):
                        samples[server, app].append(sample)
                        print(
                            f"round {round_}/{opts.rounds}  {server:8} {app:15} {sample}",
                            flush=True,
                        )
            return [Result(server, app, runs) for (server, app), runs in samples.items()]
        finally:
            procs.stop_all()


def order(
    servers: tuple[str, ...], round_: int, split: bool = False, tiers: bool = False
) -> list[tuple[str, tuple[str, ...]]]:
    """bare, kurz, then the pair(s); bare and kurz swap places every other round."""
    alone = (("bare",), ("kurz",)) if round_ % 2 else (("kurz",), ("bare",))
    pairs = (PAIR, *((FIELDS_PAIR,) if split else ()), *((TIERS_PAIR,) if tiers else ()))
    return [(server, apps) for server in servers for apps in (*alone, *pairs)]


def ratio(
    results: list[Result], server: str, app: str = "kurz", base: str = "bare", *, cpu: bool = False
) -> float:
    """Median of app/base per round: each pair ran close together, so drift mostly cancels.

    With `cpu`, the ratio of server CPU time per request, base/app: what the rates
    would be on a CPU of the server's own, which a shared host does not give.
    """
    runs = {r.app: r.samples for r in results if r.server == server}
    pairs = zip(runs[base], runs[app], strict=True)
    if cpu:
        return statistics.median(b.cpu_us / a.cpu_us for b, a in pairs)
    return statistics.median(a.rate / b.rate for b, a in pairs)


def table(results: list[Result]) -> list[str]:
    rows = [
        "| server | app | req/s (median) | per round | p50 ms | p99 ms | kurz/bare "
        "| limit on/off | server CPU us/req | on/off by CPU |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rounds = ", ".join(f"{s.rate:,.0f}" for s in r.samples)
        share = f"{ratio(results, r.server):.2f}" if r.app == "kurz" else ""
        on_off, by_cpu = "", ""
        for pair in (PAIR, FIELDS_PAIR, TIERS_PAIR):
            if r.app == pair[1]:
                on_off = f"{ratio(results, r.server, *pair[::-1]):.2f}"
                by_cpu = f"{ratio(results, r.server, *pair[::-1], cpu=True):.2f}"
        rows.append(
            f"| {r.server} | {r.app} | {r.rate:,.0f} | {rounds} | {r.p50_ms:.2f} "
            f"| {r.p99_ms:.2f} | {share} | {on_off} | {r.cpu_us:.1f} | {by_cpu} |"
        )
    return rows


def verdicts(results: list[Result]) -> list[str]:
    lines = []
    for server in dict.fromkeys(r.server for r in results):
        share = ratio(results, server)
        met = "met" if share >= GOAL else "NOT met"
        lines.append(f"{server}: kurz/bare = {share:.2f} (goal >= {GOAL}: {met})")
        for label, cpu in (("rate", False), ("server CPU per request", True)):
            cost = ratio(results, server, *PAIR[::-1], cpu=cpu)
            met = "met" if cost >= LIMITER_GOAL else "NOT met"
            lines.append(
                f"{server}: kurz-rl/kurz (redirect rate limit on/off), by {label} = "
                f"{cost:.3f} (goal >= {LIMITER_GOAL}: {met})"
            )
        if any(r.app == TIERS_PAIR[1] for r in results):
            share = ratio(results, server, "kurz-l2 (pair)", "kurz-l1 (pair)")
            met = "met" if share >= GOAL else "NOT met"
            lines.append(
                f"{server}: kurz with L2 only / kurz with L1, by rate = {share:.3f}; so "
                f"kurz-l2/bare ~ {share * ratio(results, server):.2f} (goal >= {GOAL}: {met})"
            )
        if any(r.app == FIELDS_PAIR[1] for r in results):
            fields = ratio(results, server, *FIELDS_PAIR[::-1])
            lines.append(
                f"{server}: bare with/without the two fields alone (no check), by rate = "
                f"{fields:.3f}"
            )
    return lines


def environment(opts: Options) -> list[str]:
    servers = ", ".join(f"{s} {version(s)}" for s in opts.servers)
    pinning = "server on CPU 0, wrk on CPU 1 (taskset)" if pinned(0, []) else "no CPU pinning"
    return [
        f"- machine: {len(os.sched_getaffinity(0))} CPUs (nproc), {cpu_model()}, "
        f"Python {platform.python_version()}, {pinning}",
        f"- code: kurz {source_state()}",
        f"- servers: {servers}; one worker, uvloop, no access log; FastAPI {version('fastapi')}",
        f"- wrk: {opts.threads} thread(s), {opts.connections} connections, "
        f"{opts.warmup}s warm-up then {opts.duration}s measured, {opts.rounds} interleaved "
        f"round(s), a fresh server per run, median reported",
        f"- load: GET /{{code}} cycling over {LINKS:,} codes; every answer was a 302",
        "- kurz: KURZ_RATELIMIT_REDIRECT=off; kurz-rl: KURZ_RATELIMIT_REDIRECT="
        f"{NEVER_DENY} (in process, one bucket: all load comes from 127.0.0.1), its "
        "RateLimit field checked on a 404 before each run (its redirects, far from the "
        "limit, carry none: ADR 0003); kurz and kurz-rl run as a pair, at the "
        "same time on the same CPU; bare and kurz swap order every round",
    ]


def record(opts: Options, argv: Sequence[str], results: list[Result]) -> None:
    command = command_line("bench", "bench.redirect", argv)
    if not RECORD.exists():
        RECORD.write_text(HEADER)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = [
        f"## {stamp}",
        "",
        f"Command: `{command}`",
        "",
        *environment(opts),
        "",
        *table(results),
        "",
        *(f"- {v}" for v in verdicts(results)),
        "",
        "",
    ]
    with RECORD.open("a") as out:
        out.write("\n".join(section))
    print(f"appended to {RECORD.relative_to(ROOT)}")


HEADER = """\
# Benchmarks: the log

Redirect throughput of kurz, from `make bench` (`python -m bench.redirect`; see
bench/redirect.py). Each section is one run, newest last; nothing is edited by hand.
The summary is docs/benchmarks.md.

How to read a section:

- **bare** is a minimal raw ASGI app (bench/bare_app.py) answering the same 1,000
  codes with a 302, under the same server and settings as kurz: it is the ceiling
  that server reaches on this machine. **kurz** is `kurz serve` on a fresh SQLite
  database, with the links created through its API. Every run starts a fresh server
  process and warms it up first (which fills kurz's redirect cache); the measured
  run ends before that cache's 30 s TTL, so it measures cache hits only.
- **kurz/bare** is the share of that ceiling kurz keeps: the median over rounds of
  kurz's rate over the bare app's in the same round. The project's goal is >= 0.6.
  It is the figure to compare across machines; req/s alone is not.
- **kurz-rl** is kurz with its redirect rate limit on, under a policy too large to
  refuse anything, so every redirect pays for a full check and still gets its 302.
  It runs beside a plain kurz, as a pair at the same time on the same CPU (rows
  marked "(pair)"). **limit on/off** is kurz-rl over kurz per round (median), by
  rate and by server CPU per request; the goal is >= 0.85, i.e. the limiter costs
  under 15% of the redirect rate. Sections before 2026-11-24 ran kurz-rl alone.
- Figures are medians over interleaved rounds (bare, kurz, bare, kurz, ...) on a
  shared machine: a difference of a few percent between runs is noise.
- p50/p99 are wrk's latency percentiles with that many connections open at once,
  so they measure queueing in one busy process more than the cost of one request.

"""


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    opts = parse_args(argv)
    ttl = Settings().redirect_cache_ttl
    # Cached entries live between 3/4 of the TTL and all of it (kurz.cache.TieredCache).
    if opts.warmup + opts.duration >= 0.75 * ttl:
        print(
            f"note: warm-up + duration reach KURZ_REDIRECT_CACHE_TTL ({ttl:g} s): the "
            "measured run will include kurz refilling its whole cache",
            file=sys.stderr,
        )
    try:
        wrk = ensure_wrk()
        results = measure(opts, wrk)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        return 130
    print()
    print("\n".join(environment(opts)))
    print("\n".join(table(results)))
    print("\n".join(verdicts(results)))
    if opts.record:
        record(opts, argv, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
