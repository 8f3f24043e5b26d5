"""gRPC ResolveLink against HTTP GET /{code}, on one `kurz serve` process.

    python -m bench.grpc_resolve [--duration 6] [--warmup 2] [--rounds 3]
                                 [--concurrency 16,64] [--clients 2] [--channels 1]
                                 [--analytics on|off] [--no-record]

kurz is set up as bench/redirect.py sets it up (a fresh SQLite file, an API key and
1,000 links created through its API, rate limits off), then started once, with gRPC
on a free port beside HTTP. Per round and per concurrency, wrk GETs /{code} over the
codes with that many connections, and client processes call ResolveLink over the same
codes with that many calls in flight in all (grpc.aio, one channel each); which of
the two goes first alternates by round. The server runs on CPU 0; wrk, the gRPC
clients and this script on CPU 1.

A Python gRPC client spends more CPU per call than wrk does per request, so the gRPC
rate may be the client's limit rather than kurz's. The server's CPU time per call
does not depend on the client: it is reported beside the rates, with how busy the
server was, and gRPC/HTTP is taken per round both ways, median over rounds.

The two are not the same work. ResolveLink needs an API key (`authorization`
metadata), looked up in the database on every call, and always runs the servicer (key
check, redirect limiter, operations.follow, click, protobuf); a cached GET is answered
from L1 by FastPath before FastAPI sees the request.

Every ResolveLink answer is checked against its link's URL and status, and any non-OK
status fails the run. With analytics on (the default, as a server runs), each answer
of either protocol counts a click: each run starts once the clicks before it are
recorded, and must leave at least as many recorded as it got answers.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc

from bench import harness, redirect
from bench.clicks import Counts
from bench.harness import BenchError, Processes, Sample, free_port, kurz_cli, on_cpu
from bench.redirect import LINKS, Bench, fill_cache, measure_once, server_argv
from kurz.grpc.kurz.v1 import links_pb2 as pb

RESOLVE = "/kurz.v1.LinkService/ResolveLink"
PROTOCOLS = ("HTTP", "gRPC")
# Every run of the bench measures L1 hits: no entry may expire meanwhile.
CACHE_TTL = 3_600
# Below this share of CPU 0, the server did not run flat out: it waited for its load,
# or another process (or the hypervisor) had CPU 0.
BUSY = 0.9
READY_TIMEOUT = 60.0
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Options:
    duration: int
    warmup: int
    rounds: int
    concurrency: tuple[int, ...]
    clients: int
    channels: int
    analytics: bool
    record: bool
    # KURZ_AUTH_CACHE_TTL: 0 (the default) looks the API key up on every call.
    auth_cache_ttl: float = 0.0


@dataclass(frozen=True, slots=True)
class Job:
    """What one gRPC client process is asked to do."""

    target: str
    key: str
    links: dict[str, str]
    inflight: int
    channels: int
    # Where in the codes its streams start, so that processes do not call in step.
    offset: int


@dataclass(slots=True)
class Tally:
    """What one gRPC client process saw."""

    # Every OK answer, warm-up included: each counted a click.
    answered: int = 0
    # Seconds per call, for the calls answered inside the measured window.
    latencies: list[float] = field(default_factory=list)
    failed: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Run:
    sample: Sample
    # OK answers from the start of its warm-up to its end: the clicks it caused.
    answered: int
    # The share of CPU 0's time in the measured window that the server did not get
    # because something else had it (another process, or the hypervisor: steal).
    others: float
    clicks: int | None = None
    dropped: int | None = None

    @property
    def busy(self) -> float:
        return self.sample.server_cpu_seconds / self.sample.seconds


def cpu0_ticks() -> tuple[int, int]:
    """CPU 0's busy and total clock ticks so far (/proc/stat); steal counts as busy."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu0 "):
            # user nice system idle iowait irq softirq steal
            ticks = [int(v) for v in line.split()[1:9]]
            return sum(ticks) - ticks[3] - ticks[4], sum(ticks)
    return 0, 0


@dataclass(frozen=True, slots=True)
class Mark:
    """Where the server's CPU time and CPU 0's ticks stood at the start of a window."""

    server: float
    busy: int
    total: int


def client(job: Job, conn: Connection) -> None:
    """One client process: ready once imported; then told its window, it calls."""
    try:
        conn.send(None)
        start_at, end_at = conn.recv()
        conn.send(asyncio.run(drive(job, start_at, end_at)))
    finally:
        conn.close()


async def drive(job: Job, start_at: float, end_at: float) -> Tally:
    # A pool of its own per channel: else channels with the same target share one
    # connection.
    options = [("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(job.target, options=options) for _ in range(job.channels)]
    resolves = [
        channel.unary_unary(
            RESOLVE,
            request_serializer=pb.ResolveLinkRequest.SerializeToString,
            response_deserializer=pb.ResolveLinkResponse.FromString,
        )
        for channel in channels
    ]
    metadata = (("authorization", f"Bearer {job.key}"),)
    codes = list(job.links)
    tally = Tally()

    async def stream(n: int) -> None:
        resolve = resolves[n % len(resolves)]
        i = job.offset + n * 97
        while (sent := time.monotonic()) < end_at:
            code = codes[i % len(codes)]
            i += 1
            try:
                reply = await resolve(pb.ResolveLinkRequest(code=code), metadata=metadata)
            except grpc.aio.AioRpcError as exc:
                tally.failed[exc.code().name] += 1
                continue
            done = time.monotonic()
            tally.answered += 1
            if reply.location != job.links[code] or reply.redirect_status != 302:
                tally.wrong.append(f"{code}: {reply.redirect_status} {reply.location}")
            if start_at <= done < end_at:
                tally.latencies.append(done - sent)

    try:
        await asyncio.gather(*(stream(n) for n in range(job.inflight)))
    finally:
        for channel in channels:
            await channel.close()
    return tally


def check_grpc(target: str, key: str, links: dict[str, str]) -> None:
    """Resolve every code once (a warm-up too), and make sure a call without a key fails."""
    with grpc.insecure_channel(target) as channel:
        resolve = channel.unary_unary(
            RESOLVE,
            request_serializer=pb.ResolveLinkRequest.SerializeToString,
            response_deserializer=pb.ResolveLinkResponse.FromString,
        )
        for code, url in links.items():
            reply = resolve(
                pb.ResolveLinkRequest(code=code), metadata=(("authorization", f"Bearer {key}"),)
            )
            if reply.location != url or reply.redirect_status != 302:
                raise BenchError(f"ResolveLink({code}): {reply} (expected 302 to {url})")
        try:
            resolve(pb.ResolveLinkRequest(code=next(iter(links))))
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNAUTHENTICATED:
                raise BenchError(f"ResolveLink without a key: {exc}") from None
        else:
            raise BenchError("ResolveLink answered without an API key")


class ResolveBench:
    """One `kurz serve`, HTTP and gRPC, with its links, keys and click counts."""

    def __init__(self, opts: Options, wrk: str, tmp: Path, procs: Processes) -> None:
        self.opts = opts
        self.wrk = wrk
        self.tmp = tmp
        self.procs = procs
        # bench.redirect's Options, for its wrk helpers; their connections vary per run.
        self.wrk_opts = redirect.Options(
            opts.duration, opts.warmup, 1, 1, opts.rounds, ("uvicorn",), opts.record, False
        )
        self.setup = Bench(self.wrk_opts, wrk, tmp, procs)
        self.probe = self.setup.create_links()
        self.links: dict[str, str] = json.loads(self.setup.links.read_text())
        env = self.setup.env(free_port())
        self.key = kurz_cli(["keys", "create", "--name", "grpc-bench"], env, tmp)
        # For /metrics: the click queue's counters are in the server only.
        self.admin_key = kurz_cli(["keys", "create", "--name", "grpc-admin", "--admin"], env, tmp)
        self.url = ""
        self.target = ""
        self.counts: Counts | None = None

    def start(self) -> None:
        http_port, grpc_port = free_port(), free_port()
        env = {
            **self.setup.env(http_port),
            "KURZ_GRPC_PORT": str(grpc_port),
            "KURZ_RATELIMIT_API": "off",
            "KURZ_RATELIMIT_REDIRECT": "off",
            "KURZ_ANALYTICS": "true" if self.opts.analytics else "false",
            "KURZ_REDIRECT_CACHE_TTL": str(CACHE_TTL),
            "KURZ_AUTH_CACHE_TTL": str(self.opts.auth_cache_ttl),
        }
        self.url, self.target = f"http://127.0.0.1:{http_port}", f"127.0.0.1:{grpc_port}"
        self.procs.start("kurz", server_argv("uvicorn", "kurz", http_port), env, self.tmp)
        self.procs.wait_ready("kurz", f"{self.url}/{self.probe}", 302)
        self.procs.wait_listening("kurz", grpc_port)
        fill_cache(self.url, self.setup.paths.read_text().split())
        check_grpc(self.target, self.key, self.links)
        if self.opts.analytics:
            self.counts = Counts(self.tmp / "kurz.db", self.url, self.admin_key)

    def close(self) -> None:
        if self.counts is not None:
            self.counts.close()

    def settle(self) -> tuple[int, int]:
        """Clicks recorded and dropped so far, once nothing queued is left to write."""
        if self.counts is None:
            return 0, 0
        return self.counts.settled(), self.counts.metrics()["dropped_total"]

    def run(self, protocol: str, concurrency: int) -> Run:
        recorded, dropped = self.settle()
        run = (self.http if protocol == "HTTP" else self.grpc)(concurrency)
        if self.counts is None:
            return run
        now_recorded, now_dropped = self.settle()
        return dataclasses.replace(
            run, clicks=now_recorded - recorded, dropped=now_dropped - dropped
        )

    def mark(self) -> Mark:
        return Mark(self.procs.cpu_seconds("kurz"), *cpu0_ticks())

    def since(self, mark: Mark) -> tuple[float, float]:
        """The server's CPU seconds since `mark`, and the share of CPU 0 others took."""
        server = self.procs.cpu_seconds("kurz") - mark.server
        busy, total = cpu0_ticks()
        if total <= mark.total:
            return server, 0.0
        others = (busy - mark.busy) / (total - mark.total) - server * TICKS / (total - mark.total)
        return server, max(0.0, others)

    def http(self, connections: int) -> Run:
        opts = dataclasses.replace(self.wrk_opts, connections=connections)
        warm = measure_once(self.wrk, self.url, self.setup.paths, self.opts.warmup, opts)
        mark = self.mark()
        sample = measure_once(self.wrk, self.url, self.setup.paths, self.opts.duration, opts)
        used, others = self.since(mark)
        sample = dataclasses.replace(sample, server_cpu_seconds=used)
        return Run(sample, warm.requests + sample.requests, others)

    def grpc(self, inflight: int) -> Run:
        """Client processes warm up, then count the calls answered in the measured window."""
        clients = min(self.opts.clients, inflight)
        # Spawned, not forked: grpc does not survive a fork.
        spawn = multiprocessing.get_context("spawn")
        started: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
        try:
            for n in range(clients):
                share = inflight // clients + (n < inflight % clients)
                job = Job(self.target, self.key, self.links, share, self.opts.channels, n * 331)
                mine, theirs = spawn.Pipe()
                worker = spawn.Process(target=client, args=(job, theirs))
                worker.start()
                theirs.close()
                started.append((worker, mine))
            for proc, conn in started:
                self.receive(proc, conn)
            start_at = time.monotonic() + self.opts.warmup
            end_at = start_at + self.opts.duration
            for _, conn in started:
                conn.send((start_at, end_at))
            time.sleep(max(0.0, start_at - time.monotonic()))
            mark = self.mark()
            time.sleep(max(0.0, end_at - time.monotonic()))
            used, others = self.since(mark)
            tallies: list[Tally] = [self.receive(proc, conn) for proc, conn in started]
        finally:
            for proc, _ in started:
                proc.join(5)
                if proc.is_alive():
                    proc.kill()
        failed = sum((t.failed for t in tallies), Counter[str]())
        wrong = [w for t in tallies for w in t.wrong]
        if failed or wrong:
            raise BenchError(
                f"ResolveLink: non-OK statuses {dict(failed)}; {len(wrong)} wrong answers "
                f"{wrong[:5]}"
            )
        latencies = [s for t in tallies for s in t.latencies]
        p50, p99 = (harness.percentile(latencies, q) * 1e3 for q in (0.5, 0.99))
        sample = Sample(len(latencies), self.opts.duration, p50, p99, 0, used)
        return Run(sample, sum(t.answered for t in tallies), others)

    def receive(self, proc: multiprocessing.process.BaseProcess, conn: Connection) -> Any:
        if not conn.poll(READY_TIMEOUT):
            raise BenchError(f"a gRPC client sent nothing in {READY_TIMEOUT:g} s")
        try:
            return conn.recv()
        except EOFError:
            proc.join(5)
            raise BenchError(f"a gRPC client failed (exit code {proc.exitcode})") from None


Results = dict[tuple[str, int], list[Run]]


def measure(opts: Options, wrk: str) -> Results:
    results: Results = {(p, c): [] for c in opts.concurrency for p in PROTOCOLS}
    with tempfile.TemporaryDirectory(prefix="kurz-bench-") as tmp:
        procs = Processes(Path(tmp))
        bench = None
        try:
            bench = ResolveBench(opts, wrk, Path(tmp), procs)
            bench.start()
            # The server is pinned to CPU 0 already; the clients this spawns inherit CPU 1.
            with on_cpu(1):
                for round_ in range(1, opts.rounds + 1):
                    protocols = PROTOCOLS if round_ % 2 else PROTOCOLS[::-1]
                    for concurrency in opts.concurrency:
                        for protocol in protocols:
                            run = bench.run(protocol, concurrency)
                            results[protocol, concurrency].append(run)
                            print(
                                f"round {round_}/{opts.rounds}  {protocol:4} {concurrency:3} "
                                f"in flight {run.sample}{describe(run)}",
                                flush=True,
                            )
            return results
        finally:
            if bench is not None:
                bench.close()
            procs.stop_all()


def describe(run: Run) -> str:
    line = f"  server busy {run.busy:4.0%}, CPU 0 to others {run.others:4.0%}"
    if run.clicks is None:
        return line
    return f"{line}; clicks {run.clicks:,} for {run.answered:,} answers, {run.dropped} dropped"


def ratio(results: Results, concurrency: int, *, cpu: bool) -> float:
    """Median over rounds of gRPC/HTTP, calls/s or server CPU per call."""
    pairs = zip(results["gRPC", concurrency], results["HTTP", concurrency], strict=True)
    if cpu:
        return statistics.median(g.sample.cpu_us / h.sample.cpu_us for g, h in pairs)
    return statistics.median(g.sample.rate / h.sample.rate for g, h in pairs)


def report(opts: Options, results: Results, load: tuple[float, float]) -> list[str]:
    pinning = "server on CPU 0, wrk and gRPC clients on CPU 1" if harness.pinned(0, []) else ""
    clicks = (
        "analytics on (KURZ_ANALYTICS=true, the default): ResolveLink counts a click as GET "
        "does, recorded in batches in the server; each run starts with the clicks before "
        "it recorded"
        if opts.analytics
        else "analytics off (KURZ_ANALYTICS=false)"
    )
    lookup = (
        "found in the process's key cache (looked up in SQLite once per lifetime)"
        if opts.auth_cache_ttl
        else "looked up in SQLite on every call"
    )
    keys = (
        "API keys trusted from memory that long"
        if opts.auth_cache_ttl
        else "the API key looked up on every call, the default"
    )
    lines = [
        f"- machine: {len(os.sched_getaffinity(0))} CPUs (nproc), {harness.cpu_model()}, "
        f"Python {platform.python_version()}, {pinning or 'no CPU pinning'}; load average "
        f"(1 min) {load[0]:.2f} before, {load[1]:.2f} after",
        f"- code: kurz {harness.source_state()}; one `kurz serve` for the whole run (uvicorn "
        f"{version('uvicorn')}, uvloop; gRPC in the same process and loop, grpcio "
        f"{version('grpcio')}); fresh SQLite, {LINKS:,} links created through the API; "
        f"KURZ_RATELIMIT_API=off, KURZ_RATELIMIT_REDIRECT=off, KURZ_REDIRECT_CACHE_TTL="
        f"{CACHE_TTL} (every run measures L1 hits); KURZ_AUTH_CACHE_TTL="
        f"{opts.auth_cache_ttl:g} ({keys}); {clicks}",
        "- HTTP: wrk, 1 thread, N connections, GET /{code} cycling over the codes; every "
        "answer a 302",
        f"- gRPC: {opts.clients} Python client process(es) (grpc.aio), {opts.channels} "
        "channel(s) each, N calls in flight in all, ResolveLink(code) over the same codes with "
        "`authorization: Bearer <key>` metadata; every answer checked (location and 302)",
        f"- {opts.warmup}s warm-up then {opts.duration}s measured per run, {opts.rounds} "
        "round(s), HTTP and gRPC alternating which goes first; medians over rounds; server "
        "CPU us/call is the server's CPU time (user + system) over the measured window "
        "divided by the calls answered in it, which the client's speed does not change; "
        "CPU 0 to others is the share of CPU 0 in that window that went to other processes "
        "or to steal (/proc/stat)",
        "- ResolveLink needs an API key and always takes the servicer path: the key is "
        f"{lookup}, then the redirect limiter (off), "
        "operations.follow (an L1 hit), the click and protobuf; a cached GET /{code} is "
        "answered from L1 by FastPath before FastAPI. So the rows compare two paths through "
        "kurz, not only two wire protocols",
        "",
        "| protocol | in flight | calls/s (median) | per round | server CPU us/call "
        "| server CPU busy | CPU 0 to others | p50 ms | p99 ms |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for (protocol, concurrency), runs in results.items():
        rates = ", ".join(f"{r.sample.rate:,.0f}" for r in runs)
        lines.append(
            f"| {protocol} | {concurrency} "
            f"| {statistics.median(r.sample.rate for r in runs):,.0f} | {rates} "
            f"| {statistics.median(r.sample.cpu_us for r in runs):.1f} "
            f"| {statistics.median(r.busy for r in runs):.0%} "
            f"| {statistics.median(r.others for r in runs):.0%} "
            f"| {statistics.median(r.sample.p50_ms for r in runs):.2f} "
            f"| {statistics.median(r.sample.p99_ms for r in runs):.2f} |"
        )
    lines += [
        "",
        "| in flight | gRPC/HTTP calls/s | gRPC/HTTP server CPU per call |",
        "|---:|---:|---:|",
        *(
            f"| {c} | {ratio(results, c, cpu=False):.2f} | {ratio(results, c, cpu=True):.2f} |"
            for c in opts.concurrency
        ),
        "",
        *verdicts(opts, results),
    ]
    return lines


def verdicts(opts: Options, results: Results) -> list[str]:
    grpc_runs = [r for (p, _), runs in results.items() if p == "gRPC" for r in runs]
    lines = [
        f"- ResolveLink: {sum(r.answered for r in grpc_runs):,} answers, every one checked "
        "against its link (location, 302); 0 non-OK statuses"
    ]
    # Below BUSY, the server either waited for its load (CPU 0 was idle meanwhile) or
    # did not get CPU 0 (another process or the hypervisor had it).
    for protocol, client in (("HTTP", "wrk"), ("gRPC", "the gRPC clients")):
        runs = [r for (p, _), rs in results.items() if p == protocol for r in rs]
        waited = [r for r in runs if r.busy < BUSY and r.busy + r.others < BUSY]
        if waited:
            lines.append(
                f"- {protocol}: {client} on CPU 1 (slow, or short of CPU 1 on a shared host), "
                f"not kurz, set the rate in {len(waited)} of {len(runs)} runs (server busy "
                f"{min(r.busy for r in waited):.0%} at worst, CPU 0 partly idle): compare "
                "server CPU per call there, not calls/s"
            )
    runs = [r for rs in results.values() for r in rs]
    shared = [r for r in runs if r.busy < BUSY and r.busy + r.others >= BUSY]
    if shared:
        lines.append(
            f"- CPU 0 was shared: in {len(shared)} of {len(runs)} runs the server got less "
            f"than {BUSY:.0%} of it while others took up to {max(r.others for r in shared):.0%}"
            ": those rates are the host's, not kurz's; server CPU per call still holds"
        )
    if opts.analytics:
        short = [r for r in runs if r.clicks is not None and r.clicks < r.answered]
        dropped = sum(r.dropped or 0 for r in runs)
        told = (
            f"fewer clicks than answers in {len(short)} run(s)"
            if short
            else "at least one click per answer in every run"
        )
        lines.append(f"- clicks: recorded {told}; {dropped:,} dropped by a full queue")
    return lines


def draw(opts: Options, results: Results) -> None:
    """Server CPU per call and calls/s, HTTP GET against gRPC ResolveLink by calls in
    flight: bars the medians, dots each round (docs/designs/rest-and-grpc.md)."""
    from bench import figures

    fig, (cpu_ax, rate_ax) = figures.grid(1, 2, width=9.5, height=3.6)
    width = 0.38

    def cpu_us(run: Run) -> float:
        return run.sample.cpu_us

    def rate(run: Run) -> float:
        return run.sample.rate

    panels = (
        (cpu_ax, "server CPU per call (us)", cpu_us),
        (rate_ax, "calls/s (wall clock, loaded host)", rate),
    )
    for ax, what, of in panels:
        for i, protocol in enumerate(PROTOCOLS):
            xs = [k + (i - 0.5) * width for k in range(len(opts.concurrency))]
            per_round = [[of(r) for r in results[protocol, c]] for c in opts.concurrency]
            medians = [statistics.median(values) for values in per_round]
            label = "HTTP GET /{code} (wrk)" if protocol == "HTTP" else "gRPC ResolveLink"
            bars = ax.bar(xs, medians, width, label=label, color=figures.COLORS[i])
            ax.bar_label(bars, labels=[f"{m:,.0f}" for m in medians], padding=2, fontsize=7)
            for x, values in zip(xs, per_round, strict=True):
                ax.plot([x] * len(values), values, ".", color="black", markersize=3)
        ax.set_xticks(range(len(opts.concurrency)), [str(c) for c in opts.concurrency])
        ax.set_xlabel("calls in flight (wrk connections = gRPC calls)")
        ax.set_ylabel(what)
        ax.grid(axis="x", visible=False)
        ax.set_ylim(0, ax.get_ylim()[1] * 1.3)
    cpu_ax.legend(loc="upper left")
    fig.suptitle(
        "HTTP GET against gRPC ResolveLink: one kurz serve, SQLite, cached links "
        "(a shared 2-CPU host)",
        x=0.01, ha="left", fontsize=10,
    )  # fmt: skip
    fig.supxlabel(
        f"bars: medians of {opts.rounds} rounds of {opts.duration} s; dots: each round",
        fontsize=8,
    )
    figures.save(fig, "designs/figures/rest-and-grpc-cpu-and-rate.svg")


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.grpc_resolve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--duration", type=int, default=6, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--concurrency", default="16,64", help="comma list: wrk connections = gRPC calls in flight"
    )
    parser.add_argument("--clients", type=int, default=2, help="gRPC client processes")
    parser.add_argument("--channels", type=int, default=1, help="gRPC channels per client")
    parser.add_argument("--analytics", choices=("on", "off"), default="on")
    parser.add_argument(
        "--auth-cache-ttl", type=float, default=0.0, help="KURZ_AUTH_CACHE_TTL for the server"
    )
    parser.add_argument("--no-record", action="store_true", help="do not append to the docs")
    args = parser.parse_args(argv)
    try:
        concurrency = tuple(int(c) for c in args.concurrency.split(",") if c.strip())
    except ValueError:
        parser.error("--concurrency takes a comma list of numbers")
    if not concurrency or min(concurrency) < 1:
        parser.error("--concurrency takes a comma list of numbers, each at least 1")
    if min(args.duration, args.warmup, args.rounds, args.clients, args.channels) < 1:
        parser.error("--duration, --warmup, --rounds, --clients and --channels must be >= 1")
    return Options(
        args.duration,
        args.warmup,
        args.rounds,
        concurrency,
        args.clients,
        args.channels,
        args.analytics == "on",
        not args.no_record,
        max(0.0, args.auth_cache_ttl),
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    opts = parse_args(argv)
    load = os.getloadavg()[0]
    try:
        results = measure(opts, harness.ensure_wrk())
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        return 130
    lines = report(opts, results, (load, os.getloadavg()[0]))
    draw(opts, results)
    harness.publish(
        "gRPC ResolveLink vs HTTP GET", lines,
        target="bench-grpc", module="bench.grpc_resolve", argv=argv, keep=opts.record,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
