"""Redirects with clicks counted: does ingestion keep up with wrk at full speed?

    python -m bench.clicks [--duration 15] [--warmup 3] [--connections 64]
                           [--rounds 3] [--no-record]

kurz is set up as bench/redirect.py sets it up (`kurz serve`, a fresh SQLite file,
1,000 links created through its API, rate limits off), then three apps run one at a
time, a fresh server each, interleaved over rounds: kurz counting clicks
(KURZ_ANALYTICS=true, the default), kurz not counting them (false), and the bare ASGI
app (bench/bare_app.py) under the same server. kurz-clicks/bare is the redirect rate
goal (>= 0.6); kurz-clicks/kurz-noclicks is what counting clicks costs.

Before kurz-clicks's measured run, the clicks of its warm-up are left to be recorded
(the count in link_clicks_hourly stops moving, and /metrics has written what was
queued). After wrk stops, the SQLite file is read every 10 ms until the count has
grown by every redirect wrk got: that wait is the drain time (goal <= 2 s). The
clicks recorded must be at least wrk's redirects (the server may answer a few
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
from collections.abc import Sequence
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
    Bench,
    Options,
    add_load_options,
    fill_cache,
    load_options,
    measure_once,
    server_argv,
)
from kurz.config import Settings

ROOT = Path(__file__).resolve().parents[1]
APPS = ("bare", "kurz-clicks", "kurz-noclicks")
RATE_GOAL = 0.6
DRAIN_GOAL = 2.0
RECORDED = "SELECT coalesce(sum(clicks) + sum(bot_clicks), 0) FROM link_clicks_hourly"
POLL = 0.01
# The count is settled once it has not moved for this long (a batch waits 50 ms for
# more clicks, then takes well under this to write).
QUIET = 0.5
# Give up waiting for the drain after this long, or once the count stops moving.
DRAIN_LIMIT = 60.0
STALLED = 5.0


@dataclass(frozen=True, slots=True)
class Drain:
    """What became of the clicks of one measured kurz-clicks run."""

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
    samples: dict[str, Sample]
    drain: Drain

    def ratio(self, app: str, base: str) -> float:
        return self.samples[app].rate / self.samples[base].rate


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


def cache_ttl(opts: Options) -> float:
    """Long enough that the measured run ends before any cached entry expires.

    Cached entries live between 3/4 of the TTL and all of it (kurz.cache.TieredCache);
    filling the cache, the warm-up, waiting for its clicks and the run take longer
    than 3/4 of the default 30 s, and the runs should measure cache hits only.
    """
    return max(Settings().redirect_cache_ttl, 3.0 * (opts.warmup + opts.duration))


class ClickBench:
    """One run: redirect.py's set-up (database, links, servers), plus an admin key."""

    def __init__(self, opts: Options, wrk: str, tmp: Path, procs: Processes) -> None:
        self.opts = opts
        self.wrk = wrk
        self.tmp = tmp
        self.procs = procs
        self.setup = Bench(opts, wrk, tmp, procs)
        self.probe = self.setup.create_links()
        # For /metrics: the queue's counters (dropped clicks) are in the server only.
        env = self.setup.env(free_port())
        self.admin_key = kurz_cli(["keys", "create", "--name", "clicks", "--admin"], env, tmp)
        self.ttl = cache_ttl(opts)

    def env(self, app: str, port: int) -> dict[str, str]:
        return {
            **self.setup.env(port),
            "KURZ_RATELIMIT_API": "off",
            "KURZ_ANALYTICS": "false" if app == "kurz-noclicks" else "true",
            "KURZ_REDIRECT_CACHE_TTL": str(self.ttl),
            "BENCH_LINKS": str(self.setup.links),
            "BENCH_FIELDS": "0",
            "PYTHONPATH": str(ROOT),
        }

    def run(self, app: str) -> tuple[Sample, Drain | None]:
        """A fresh server: fill its cache, warm up, then one measured wrk run."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        argv = server_argv("uvicorn", "bare" if app == "bare" else "kurz", port)
        self.procs.start(app, argv, self.env(app, port), self.tmp)
        counts = None
        try:
            self.procs.wait_ready(app, f"{url}/{self.probe}", 302)
            filled = time.monotonic()
            fill_cache(url, self.setup.paths.read_text().split())
            self.measure(url, self.opts.warmup)
            if app == "kurz-clicks":
                counts = Counts(self.tmp / "kurz.db", url, self.admin_key)
                before = counts.settled()
            cpu = self.procs.cpu_seconds(app)
            launched = time.monotonic()
            sample = self.measure(url, self.opts.duration)
            sample = replace(sample, server_cpu_seconds=self.procs.cpu_seconds(app) - cpu)
            # wrk's clock starts after it is launched: its end is no earlier than this.
            ended = launched + sample.seconds
            self.check_ttl(app, ended - filled)
            drain = None
            if counts is not None:
                drain = self.drain(app, counts, before, sample, ended, cpu)
            return sample, drain
        finally:
            if counts is not None:
                counts.close()
            self.procs.stop(app)

    def measure(self, url: str, seconds: int) -> Sample:
        return measure_once(self.wrk, url, self.setup.paths, seconds, self.opts)

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

    def check_ttl(self, app: str, seconds: float) -> None:
        if app != "bare" and seconds >= 0.75 * self.ttl:
            print(
                f"note: {app}'s run ended {seconds:.1f} s after its cache was filled, past "
                f"3/4 of KURZ_REDIRECT_CACHE_TTL ({self.ttl:g} s): it refilled entries",
                file=sys.stderr,
            )


def measure(opts: Options, wrk: str) -> list[Round]:
    rounds = []
    with tempfile.TemporaryDirectory(prefix="kurz-bench-") as tmp:
        procs = Processes(Path(tmp))
        try:
            bench = ClickBench(opts, wrk, Path(tmp), procs)
            for round_ in range(1, opts.rounds + 1):
                # Each app goes first, second and last in turn.
                shift = (round_ - 1) % len(APPS)
                samples: dict[str, Sample] = {}
                drain = None
                for app in (*APPS[shift:], *APPS[:shift]):
                    samples[app], drained = bench.run(app)
                    drain = drained or drain
                    print(
                        f"round {round_}/{opts.rounds}  {app:13} {samples[app]}{drained or ''}",
                        flush=True,
                    )
                assert drain is not None
                rounds.append(Round(samples, drain))
            return rounds
        finally:
            procs.stop_all()


def report(opts: Options, rounds: list[Round]) -> list[str]:
    pinning = "server on CPU 0, wrk on CPU 1 (taskset)" if pinned(0, []) else "no CPU pinning"
    lines = [
        f"- machine: {len(os.sched_getaffinity(0))} CPUs (nproc), {cpu_model()}, "
        f"Python {platform.python_version()}, {pinning}",
        f"- code: kurz {source_state()}; uvicorn {version('uvicorn')} (`kurz serve`), one "
        "worker, uvloop; SQLite (embedded: the Drainer records batches in the server); "
        f"KURZ_REDIRECT_CACHE_TTL={cache_ttl(opts):g} so that runs measure cache hits only",
        f"- wrk: {opts.threads} thread(s), {opts.connections} connections, GET /{{code}} over "
        f"{LINKS:,} codes, {opts.warmup}s warm-up then {opts.duration}s at full speed; "
        f"{opts.rounds} interleaved round(s), a fresh server per run; every answer a 302",
        "- drain: from wrk's end until link_clicks_hourly counts every redirect wrk got, "
        f"polled every {POLL * 1e3:g} ms; CPU per request for kurz-clicks includes the drain",
        "",
        "| round | kurz-clicks req/s | bare req/s | kurz-clicks/bare | kurz-noclicks req/s "
        "| clicks/noclicks | drain | clicks recorded / redirects | dropped "
        "| CPU us/req clicks / noclicks | p99 ms clicks / noclicks |",
        "|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for n, r in enumerate(rounds, 1):
        d, s = r.drain, r.samples
        drained = f"{d.seconds:.2f} s" if d.seconds is not None else "not drained"
        lines.append(
            f"| {n} | {s['kurz-clicks'].rate:,.0f} | {s['bare'].rate:,.0f} "
            f"| {r.ratio('kurz-clicks', 'bare'):.2f} | {s['kurz-noclicks'].rate:,.0f} "
            f"| {r.ratio('kurz-clicks', 'kurz-noclicks'):.2f} | {drained} "
            f"| {d.recorded:,} / {d.redirects:,} | {d.dropped:,} "
            f"| {d.cpu_us:.1f} / {s['kurz-noclicks'].cpu_us:.1f} "
            f"| {s['kurz-clicks'].p99_ms:.1f} / {s['kurz-noclicks'].p99_ms:.1f} |"
        )
    return [*lines, "", *verdicts(rounds, opts.duration)]


def verdicts(rounds: list[Round], duration: int) -> list[str]:
    share = statistics.median(r.ratio("kurz-clicks", "bare") for r in rounds)
    cost = statistics.median(r.ratio("kurz-clicks", "kurz-noclicks") for r in rounds)
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
        f"- kurz-clicks/bare, median: {share:.2f} (goal >= {RATE_GOAL}: "
        f"{_met(share >= RATE_GOAL)})",
        f"- drain after {duration} s at full speed, worst: {drained}",
        f"- counting clicks: kurz-clicks/kurz-noclicks, median: {cost:.2f} of the redirect rate",
        f"- {lost}",
    ]


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.clicks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_load_options(parser, duration=15)
    return load_options(parser, parser.parse_args(argv), ("uvicorn",))


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
        "Clicks: redirect rate and backlog drain", report(opts, rounds),
        target="bench-clicks", module="bench.clicks", argv=argv, keep=opts.record,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
