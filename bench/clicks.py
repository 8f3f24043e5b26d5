"""kurz as installed against lean kurz and the bare app, over several cache lifetimes.

    python -m bench.clicks [--duration 90] [--warmup 3] [--connections 64,256]
                           [--rounds 3] [--cache-ttl SECONDS] [--no-record]

kurz is set up as bench/redirect.py sets it up (`kurz serve`, a fresh SQLite file,
1,000 links created through its API). Three apps then run one at a time, a fresh
server each, interleaved over rounds and over each number of connections:

- kurz-defaults: kurz as installed: clicks counted, the redirect limit checked on
  every redirect, L1 entries living KURZ_REDIRECT_CACHE_TTL (30 s by default). The
  limit is bench.redirect's policy that never refuses (the default one would refuse
  wrk, which is one client): each redirect pays for a full check and still answers
  302. Far from that limit, a redirect goes without the RateLimit fields (ADR 0003).
- kurz-lean: the same kurz with clicks and the redirect limit off (same cache TTL).
- bare: the bare ASGI app (bench/bare_app.py) under the same server.

A measured run lasts several L1 lifetimes (90 s against 30 s by default), so every
hot link expires, or is refreshed, during it. The goals (issue 18), at every number
of connections: kurz-defaults/bare >= 0.6 by rate, and kurz-defaults's p99 at most
twice kurz-lean's in the same round; each is reported per round and as the median
over rounds. With the defaults a run takes about 3 rounds x 2 connection counts x 3
apps x (3 s + 90 s + set-up and drain) = 35 minutes; --duration, --rounds and
--connections shorten it for a smoke run.

Before kurz-defaults's measured run, the clicks of its warm-up are left to be
recorded (the count in link_clicks_hourly stops moving, and /metrics has written
what was queued). After wrk stops, the SQLite file is read every 10 ms until the
count has grown by every redirect wrk got: that wait is the drain time (goal <= 2 s).
The clicks recorded must be at least wrk's redirects (the server may answer a few
requests in flight after wrk stops counting); /metrics tells how many were dropped.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path

import httpx

from bench import harness
from bench.harness import (
    BenchError,
    Processes,
    Sample,
    cpu_model,
    ensure_wrk,
    free_port,
    kurz_cli,
    pinned,
    source_state,
)
from bench.redirect import (
    LINKS,
    NEVER_DENY,
    Bench,
    Options,
    fill_cache,
    limit_fields,
    measure_once,
    server_argv,
)
from kurz.config import Settings

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS, LEAN, BARE = "kurz-defaults", "kurz-lean", "bare"
APPS = (BARE, LEAN, DEFAULTS)
RATE_GOAL = 0.6
P99_GOAL = 2.0
DRAIN_GOAL = 2.0
RECORDED = "SELECT coalesce(sum(clicks) + sum(bot_clicks), 0) FROM link_clicks_hourly"
POLL = 0.01
# The count is settled once it has not moved for this long (a batch waits 0.5 s for
# more clicks, then takes well under this to write).
QUIET = 1.0
# Give up waiting for the drain after this long, or once the count stops moving.
DRAIN_LIMIT = 60.0
STALLED = 5.0


@dataclass(frozen=True, slots=True)
class Drain:
    """What became of the clicks of one measured kurz-defaults run."""

    # From wrk's end until every redirect it got was recorded; None if never.
    seconds: float | None
    redirects: int
    recorded: int
    dropped: int
    # Server CPU per redirect from the start of the run to the end of the drain.
    cpu_us: float

    def __str__(self) -> str:
        drained = f"drained in {self.seconds:.2f} s" if self.seconds is not None else "NOT drained"
        extra = self.recorded - self.redirects
        told = f"+{extra} in flight" if extra >= 0 else f"{-extra:,} SHORT"
        return (
            f"  {drained}; {self.recorded:,} clicks recorded for {self.redirects:,} "
            f"redirects ({told}), {self.dropped:,} dropped; {self.cpu_us:.1f} us CPU/req "
            "with the drain"
        )


@dataclass(frozen=True, slots=True)
class Round:
    """One round at one number of connections: the three apps, one after another."""

    number: int
    connections: int
    samples: dict[str, Sample]
    drain: Drain

    @property
    def share(self) -> float:
        """kurz-defaults/bare, by rate."""
        return self.samples[DEFAULTS].rate / self.samples[BARE].rate

    @property
    def lean_share(self) -> float:
        return self.samples[LEAN].rate / self.samples[BARE].rate

    @property
    def tail(self) -> float:
        """kurz-defaults's p99 over kurz-lean's."""
        return self.samples[DEFAULTS].p99_ms / self.samples[LEAN].p99_ms


@dataclass(frozen=True, slots=True)
class ClickOptions:
    load: Options
    levels: tuple[int, ...]
    cache_ttl: float

    def at(self, connections: int) -> Options:
        return replace(self.load, connections=connections)


class Counts:
    """Clicks recorded so far, read from kurz's SQLite file, and its queue's counters."""

    def __init__(self, db: Path, url: str, admin_key: str) -> None:
        self.conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        self.client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=10
        )

    def recorded(self) -> int:
        count: int = self.conn.execute(RECORDED).fetchone()[0]
        return count

    def metrics(self) -> dict[str, int]:
        """The kurz_clicks_* counters of /metrics (which print them with %g)."""
        response = self.client.get("/metrics")
        if response.status_code != 200:
            raise BenchError(f"GET /metrics: {response.status_code} {response.text}")
        return {
            name.removeprefix("kurz_clicks_"): round(float(value))
            for name, _, value in (ln.partition(" ") for ln in response.text.splitlines())
            if name.startswith("kurz_clicks_")
        }

    def settled(self) -> int:
        """The count once nothing queued is left to write."""
        deadline = time.monotonic() + DRAIN_LIMIT
        count, since = self.recorded(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.recorded()
            if now != count:
                count, since = now, time.monotonic()
            elif time.monotonic() - since >= QUIET:
                counters = self.metrics()
                if counters["written_total"] >= counters["queued_total"]:
                    return count
                since = time.monotonic()
        raise BenchError(f"the click count did not settle within {DRAIN_LIMIT:g} s")

    def reach(self, target: int, since: float) -> float | None:
        """Seconds from `since` until the count reaches `target`; None if it stalls first."""
        deadline = since + DRAIN_LIMIT
        count, moved = self.recorded(), time.monotonic()
        while count < target:
            now = time.monotonic()
            if now > deadline or now - moved > STALLED:
                return None
            time.sleep(POLL)
            latest = self.recorded()
            if latest != count:
                count, moved = latest, time.monotonic()
        return time.monotonic() - since

    def close(self) -> None:
        self.conn.close()
        self.client.close()


class ClickBench:
    """One run: redirect.py's set-up (database, links, servers), plus an admin key."""

    def __init__(self, opts: ClickOptions, wrk: str, tmp: Path, procs: Processes) -> None:
        self.opts = opts
        self.wrk = wrk
        self.tmp = tmp
        self.procs = procs
        self.setup = Bench(opts.load, wrk, tmp, procs)
        self.probe = self.setup.create_links()
        # For /metrics: the queue's counters (dropped clicks) are in the server only.
        env = self.setup.env(free_port())
        self.admin_key = kurz_cli(["keys", "create", "--name", "clicks", "--admin"], env, tmp)

    def env(self, app: str, port: int) -> dict[str, str]:
        defaults = app == DEFAULTS
        return {
            **self.setup.env(port, NEVER_DENY if defaults else "off"),
            "KURZ_RATELIMIT_API": "off",
            "KURZ_ANALYTICS": "true" if defaults else "false",
            "KURZ_REDIRECT_CACHE_TTL": str(self.opts.cache_ttl),
            "BENCH_LINKS": str(self.setup.links),
            "BENCH_FIELDS": "0",
            # This tree's kurz, the commit the report names, whatever is installed.
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        }

    def run(self, app: str, connections: int) -> tuple[Sample, Drain | None]:
        """A fresh server: fill its cache, warm up, then one measured wrk run."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        argv = server_argv("uvicorn", "bare" if app == BARE else "kurz", port)
        self.procs.start(app, argv, self.env(app, port), self.tmp)
        opts = self.opts.at(connections)
        counts = None
        try:
            self.procs.wait_ready(app, f"{url}/{self.probe}", 302)
            self.check_limiter(app, url)
            fill_cache(url, self.setup.paths.read_text().split())
            measure_once(self.wrk, url, self.setup.paths, opts.warmup, opts)
            if app == DEFAULTS:
                counts = Counts(self.tmp / "kurz.db", url, self.admin_key)
                before = counts.settled()
            cpu = self.procs.cpu_seconds(app)
            launched = time.monotonic()
            sample = measure_once(self.wrk, url, self.setup.paths, opts.duration, opts)
            sample = replace(sample, server_cpu_seconds=self.procs.cpu_seconds(app) - cpu)
            drain = None
            if counts is not None:
                # wrk's clock starts after it is launched: its end is no earlier than this.
                ended = launched + sample.seconds
                drain = self.drain(app, counts, before, sample, ended, cpu)
            return sample, drain
        finally:
            if counts is not None:
                counts.close()
            self.procs.stop(app)

    def check_limiter(self, app: str, url: str) -> None:
        """kurz-defaults must be checking its limit (RateLimit fields), the others not."""
        fields = limit_fields(url)
        if (app == DEFAULTS) != bool(fields):
            raise BenchError(f"{app}: RateLimit fields {fields} on {url}: wrong limiter set-up")

    def drain(
        self, app: str, counts: Counts, before: int, sample: Sample, ended: float, cpu: float
    ) -> Drain:
        seconds = counts.reach(before + sample.requests, ended)
        if seconds is not None:
            counts.settled()
        recorded = counts.recorded() - before
        dropped = counts.metrics()["dropped_total"]
        used = self.procs.cpu_seconds(app) - cpu
        return Drain(seconds, sample.requests, recorded, dropped, used / sample.requests * 1e6)


def measure(opts: ClickOptions, wrk: str) -> list[Round]:
    rounds = []
    with tempfile.TemporaryDirectory(prefix="kurz-bench-") as tmp:
        procs = Processes(Path(tmp))
        try:
            bench = ClickBench(opts, wrk, Path(tmp), procs)
            for number in range(1, opts.load.rounds + 1):
                for connections in opts.levels:
                    # Each app goes first, second and last in turn.
                    shift = (number - 1) % len(APPS)
                    samples: dict[str, Sample] = {}
                    drain = None
                    for app in (*APPS[shift:], *APPS[:shift]):
                        samples[app], drained = bench.run(app, connections)
                        drain = drained or drain
                        print(
                            f"round {number}/{opts.load.rounds}  c={connections:<4} {app:13} "
                            f"{samples[app]}{drained or ''}",
                            flush=True,
                        )
                    assert drain is not None
                    done = Round(number, connections, samples, drain)
                    print(
                        f"round {number}  c={connections:<4} defaults/bare {done.share:.2f}, "
                        f"p99 defaults/lean {done.tail:.2f}",
                        flush=True,
                    )
                    rounds.append(done)
            return rounds
        finally:
            procs.stop_all()


def report(opts: ClickOptions, rounds: list[Round]) -> list[str]:
    pinning = "server on CPU 0, wrk on CPU 1 (taskset)" if pinned(0, []) else "no CPU pinning"
    load = opts.load
    lines = [
        f"- machine: {len(os.sched_getaffinity(0))} CPUs (nproc), {cpu_model()}, "
        f"Python {platform.python_version()}, {pinning}",
        f"- code: kurz {source_state()}; uvicorn {version('uvicorn')} (`kurz serve`), one "
        "worker, uvloop; SQLite (embedded: the Drainer records batches in the server)",
        f"- apps: {DEFAULTS} (clicks on, redirect limit {NEVER_DENY} checked on every "
        f"redirect), {LEAN} (clicks and limit off), {BARE}; both kurz with "
        f"KURZ_REDIRECT_CACHE_TTL={opts.cache_ttl:g}, so a run spans "
        f"{load.duration / opts.cache_ttl:.1f} L1 lifetimes",
        f"- wrk: {load.threads} thread(s), {', '.join(map(str, opts.levels))} connections, "
        f"GET /{{code}} over {LINKS:,} codes, {load.warmup}s warm-up then {load.duration}s "
        f"at full speed; {load.rounds} interleaved round(s), a fresh server per run; "
        "every answer a 302",
        f"- drain: from wrk's end until link_clicks_hourly counts every redirect wrk got, "
        f"polled every {POLL * 1e3:g} ms; CPU per request for {DEFAULTS} includes the drain",
        "",
        "| round | conns | defaults req/s | lean req/s | bare req/s | defaults/bare "
        "| lean/bare | p99 ms defaults / lean / bare | p99 defaults/lean | drain "
        "| clicks recorded / redirects | dropped | CPU us/req defaults / lean |",
        "|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---:|---:|",
    ]
    for r in rounds:
        d, s = r.drain, r.samples
        drained = f"{d.seconds:.2f} s" if d.seconds is not None else "not drained"
        lines.append(
            f"| {r.number} | {r.connections} | {s[DEFAULTS].rate:,.0f} | {s[LEAN].rate:,.0f} "
            f"| {s[BARE].rate:,.0f} | {r.share:.2f}{_mark(r.share >= RATE_GOAL)} "
            f"| {r.lean_share:.2f} "
            f"| {s[DEFAULTS].p99_ms:.1f} / {s[LEAN].p99_ms:.1f} / {s[BARE].p99_ms:.1f} "
            f"| {r.tail:.2f}{_mark(r.tail <= P99_GOAL)} | {drained} "
            f"| {d.recorded:,} / {d.redirects:,} | {d.dropped:,} "
            f"| {d.cpu_us:.1f} / {s[LEAN].cpu_us:.1f} |"
        )
    return [*lines, "", *verdicts(opts, rounds)]


def verdicts(opts: ClickOptions, rounds: list[Round]) -> list[str]:
    lines = []
    for connections in opts.levels:
        at = [r for r in rounds if r.connections == connections]
        share = statistics.median(r.share for r in at)
        tail = statistics.median(r.tail for r in at)
        lines += [
            f"- {connections} connections: {DEFAULTS}/bare, median {share:.2f}, rounds "
            f"{_spread(r.share for r in at)} (goal >= {RATE_GOAL}: {_met(share >= RATE_GOAL)})",
            f"- {connections} connections: p99 {DEFAULTS}/{LEAN}, median {tail:.2f}, rounds "
            f"{_spread(r.tail for r in at)} (goal <= {P99_GOAL:g}: {_met(tail <= P99_GOAL)})",
        ]
    drains = [r.drain.seconds for r in rounds]
    worst = max(d for d in drains if d is not None) if None not in drains else None
    short = [r.drain.redirects - r.drain.recorded for r in rounds]
    dropped = sum(r.drain.dropped for r in rounds)
    drained = (
        f"{worst:.2f} s (goal <= {DRAIN_GOAL:g} s: {_met(worst <= DRAIN_GOAL)})"
        if worst is not None
        else f"a round never drained (goal <= {DRAIN_GOAL:g} s: NOT met)"
    )
    lost = (
        f"CLICKS LOST: recorded fewer than wrk's redirects by {', '.join(map(str, short))} "
        f"per round; {dropped:,} dropped by the full queue"
        if max(short) > 0
        else f"no click lost: recorded >= wrk's redirects in every round; {dropped:,} dropped"
    )
    return [
        *lines,
        f"- drain after {opts.load.duration} s at full speed, worst: {drained}",
        f"- {lost}",
    ]


def _spread(values: Iterable[float]) -> str:
    ordered = sorted(values)
    return f"{ordered[0]:.2f}-{ordered[-1]:.2f}" if len(ordered) > 1 else f"{ordered[0]:.2f}"


def _mark(ok: bool) -> str:
    return "" if ok else " ✗"


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def parse_args(argv: Sequence[str]) -> ClickOptions:
    parser = argparse.ArgumentParser(
        prog="python -m bench.clicks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ttl = Settings().redirect_cache_ttl
    parser.add_argument("--duration", type=int, default=90, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up before each")
    parser.add_argument(
        "--connections", default="64,256", help="comma list: a round runs each in turn"
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs per app")
    parser.add_argument(
        "--cache-ttl", type=float, default=ttl, help=f"KURZ_REDIRECT_CACHE_TTL ({ttl:g} s)"
    )
    parser.add_argument("--no-record", action="store_true", help="do not append to the docs")
    args = parser.parse_args(argv)
    try:
        levels = tuple(int(part) for part in args.connections.split(",") if part.strip())
    except ValueError:
        parser.error("--connections takes a comma list of numbers")
    if not levels or min(levels) < args.threads:
        parser.error("--connections must each be at least --threads")
    if min(args.duration, args.warmup, args.rounds, args.threads) < 1 or args.cache_ttl <= 0:
        parser.error("--duration, --warmup, --rounds, --threads and --cache-ttl must be positive")
    load = Options(
        args.duration,
        args.warmup,
        levels[0],
        args.threads,
        args.rounds,
        ("uvicorn",),
        not args.no_record,
        False,
    )
    return ClickOptions(load, levels, args.cache_ttl)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    opts = parse_args(argv)
    try:
        rounds = measure(opts, ensure_wrk())
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        return 130
    harness.publish(
        "Clicks: kurz as installed against lean kurz and the bare app, over several cache "
        "lifetimes", report(opts, rounds),
        target="bench-clicks", module="bench.clicks", argv=argv, keep=opts.load.record,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
