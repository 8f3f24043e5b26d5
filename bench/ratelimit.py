"""Rate-limit checks per second: kurz's limiters against the `limits` library.

    python -m bench.ratelimit [--rounds 5] [--iterations 200000] [--redis-checks 10000]
                              [--concurrency 32] [--no-record]

In process, kurz's MemoryLimiter (`check_now`, and an awaited `check`) runs against
limits' MovingWindowRateLimiter and FixedWindowRateLimiter on its MemoryStorage, over
three workloads (WORKLOADS). With Redis, kurz's RedisLimiter (redis.asyncio, awaited
one after another, and from --concurrency tasks at once) runs against limits'
RedisStorage with both limiters (redis-py, synchronous), on a redis-server this run
starts on a free port, so that nothing else's commands are counted: MONITOR over
untimed checks tells round trips from calls inside Lua, INFO commandstats counts
what the timed checks executed.
Every measurement gets fresh limiter state and a fresh key prefix; rounds are
interleaved, rates are medians, ratios are medians of per-round ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import redis
import redis.asyncio
import uvloop
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter, RateLimiter

from bench import figures, harness
from bench.harness import (
    BenchError,
    Processes,
    RedisCommands,
    cpu_model,
    free_port,
    on_cpu,
    pinned,
    redis_server_argv,
    redis_server_version,
    source_state,
)
from kurz.ratelimit import MemoryLimiter, Policy, RedisLimiter

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "docs" / "benchmarks" / "history.md"
GOAL_SPEEDUP = 2.0
BASELINE = "limits moving window"
WARMUP_CHECKS = 500


@dataclass(frozen=True, slots=True)
class Workload:
    """Keys cycled in order, under `limit` checks per minute for each key."""

    name: str
    keys: tuple[str, ...]
    limit: int

    def policy(self) -> Policy:
        return Policy("bench", self.limit, 60, self.limit)

    def item(self) -> RateLimitItem:
        return RateLimitItemPerMinute(self.limit)

    def sequence(self, n: int, tag: str = "") -> list[str]:
        return [f"{tag}{self.keys[i % len(self.keys)]}" for i in range(n)]


MANY_KEYS = tuple(f"client-{i}" for i in range(1_000))
WORKLOADS = (
    Workload("1,000 keys, 1000/min (all allowed)", MANY_KEYS, 1_000),
    Workload("hot key, 1000/min (mostly denied)", ("hot",), 1_000),
    # 600,000/min = 10,000/s, the fastest policy kurz accepts (kurz.ratelimit.policy).
    Workload("hot key, 600000/min (all allowed)", ("hot",), 600_000),
)
REDIS_WORKLOAD = WORKLOADS[0]


@dataclass(frozen=True, slots=True)
class Options:
    iterations: int
    redis_checks: int
    concurrency: int
    rounds: int
    no_record: bool


@dataclass(frozen=True, slots=True)
class Sample:
    rate: float
    allowed: float
    # Redis only, by command name. Per check, in the warm-up under MONITOR: what the
    # client sent (round trips) and what ran inside Lua; what the first check sent;
    # per check in the timed run, everything Redis executed (INFO commandstats).
    trips: dict[str, float] = field(default_factory=dict)
    lua: dict[str, float] = field(default_factory=dict)
    first: dict[str, float] = field(default_factory=dict)
    executed: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.rate:>10,.0f} checks/s  allowed {self.allowed:6.1%}"


def timed(loop: Callable[[], int], n: int) -> Sample:
    gc.collect()
    start = time.perf_counter()
    allowed = loop()
    return Sample(n / (time.perf_counter() - start), allowed / n)


# ---- in process -------------------------------------------------------------------


def kurz_sync(w: Workload, keys: list[str]) -> Sample:
    check, policy = MemoryLimiter(time.time).check_now, w.policy()
    return timed(lambda: sum(1 for key in keys if check(policy, key).allowed), len(keys))


def kurz_async(w: Workload, keys: list[str]) -> Sample:
    check, policy = MemoryLimiter(time.time).check, w.policy()

    async def loop() -> Sample:
        gc.collect()
        start, allowed = time.perf_counter(), 0
        for key in keys:
            if (await check(policy, key)).allowed:
                allowed += 1
        return Sample(len(keys) / (time.perf_counter() - start), allowed / len(keys))

    return uvloop.run(loop())


def limits_memory(strategy: type[RateLimiter]) -> Callable[[Workload, list[str]], Sample]:
    def run(w: Workload, keys: list[str]) -> Sample:
        hit, item = strategy(MemoryStorage()).hit, w.item()
        return timed(lambda: sum(1 for key in keys if hit(item, key)), len(keys))

    return run


IN_PROCESS: dict[str, Callable[[Workload, list[str]], Sample]] = {
    "kurz MemoryLimiter.check_now": kurz_sync,
    "kurz await MemoryLimiter.check": kurz_async,
    BASELINE: limits_memory(MovingWindowRateLimiter),
    "limits fixed window": limits_memory(FixedWindowRateLimiter),
}


# ---- Redis ------------------------------------------------------------------------

Many = Callable[[list[str]], Awaitable[int]]
RedisRun = Callable[[str, str, Workload, int, RedisCommands], Sample]


def per_check(counts: Mapping[str, float], checks: int, lua: bool) -> dict[str, float]:
    pick = sorted((k, v) for k, v in counts.items() if k.startswith("lua ") == lua)
    return {k.removeprefix("lua "): v / checks for k, v in pick}


async def phases(many: Many, w: Workload, n: int, counter: RedisCommands) -> Sample:
    """The first check and a warm-up under MONITOR, then `n` checks timed and counted."""
    with counter.watch(most=20 * (2 * WARMUP_CHECKS + 1) + 1_000) as watch:
        await many(["first"])
        watch.mark()
        # The first warm-up opens the connections; the second is counted.
        await many(w.sequence(WARMUP_CHECKS, "a-"))
        watch.mark()
        await many(w.sequence(WARMUP_CHECKS, "b-"))
        watch.mark()
    first, _, steady = watch.segments
    keys = w.sequence(n)
    gc.collect()
    before = counter.snapshot()
    start = time.perf_counter()
    allowed = await many(keys)
    elapsed = time.perf_counter() - start
    return Sample(
        n / elapsed,
        allowed / n,
        trips=per_check(steady, WARMUP_CHECKS, lua=False),
        lua=per_check(steady, WARMUP_CHECKS, lua=True),
        first=per_check(first, 1, lua=False),
        executed=counter.since(before, n),
    )


def kurz_redis(tasks: int) -> RedisRun:
    async def run(url: str, prefix: str, w: Workload, n: int, counter: RedisCommands) -> Sample:
        client = redis.asyncio.Redis.from_url(url)
        limiter, policy = RedisLimiter(client, prefix=prefix), w.policy()

        async def one_by_one(keys: list[str]) -> int:
            allowed = 0
            for key in keys:
                if (await limiter.check(policy, key)).allowed:
                    allowed += 1
            return allowed

        async def many(keys: list[str]) -> int:
            if len(keys) < tasks:
                return await one_by_one(keys)
            slices = (one_by_one(keys[i::tasks]) for i in range(tasks))
            return sum(await asyncio.gather(*slices))

        try:
            return await phases(many, w, n, counter)
        finally:
            await client.aclose()

    return lambda *args: uvloop.run(run(*args))


def limits_redis(strategy: type[RateLimiter]) -> RedisRun:
    def run(url: str, prefix: str, w: Workload, n: int, counter: RedisCommands) -> Sample:
        # limits joins its prefix and the key with ":"; ours already ends in one.
        storage = RedisStorage(url, key_prefix=prefix.removesuffix(":"))
        hit, item = strategy(storage).hit, w.item()

        async def many(keys: list[str]) -> int:
            # Synchronous checks: nothing in the loop awaits.
            return sum(1 for key in keys if hit(item, key))

        try:
            return uvloop.run(phases(many, w, n, counter))
        finally:
            storage.storage.close()

    return run


def redis_limiters(concurrency: int) -> dict[str, RedisRun]:
    return {
        "kurz RedisLimiter, sequential awaits": kurz_redis(1),
        f"kurz RedisLimiter, {concurrency} tasks": kurz_redis(concurrency),
        "limits Redis moving window (sync)": limits_redis(MovingWindowRateLimiter),
        "limits Redis fixed window (sync)": limits_redis(FixedWindowRateLimiter),
    }


# ---- the run ----------------------------------------------------------------------

Results = dict[tuple[str, str], list[Sample]]


def measure(opts: Options, url: str) -> tuple[Results, Results]:
    counter = RedisCommands(url)
    workloads = {w.name: (w, w.sequence(opts.iterations)) for w in WORKLOADS}
    local: Results = {(w.name, name): [] for w in WORKLOADS for name in IN_PROCESS}
    limiters = redis_limiters(opts.concurrency)
    remote: Results = {(REDIS_WORKLOAD.name, name): [] for name in limiters}
    run_id = uuid.uuid4().hex[:8]
    try:
        for round_ in range(1, opts.rounds + 1):
            for (workload, name), samples in local.items():
                samples.append(IN_PROCESS[name](*workloads[workload]))
                print(f"round {round_}/{opts.rounds}  {workload:36} {name:30} {samples[-1]}")
            for i, ((_, name), samples) in enumerate(remote.items()):
                prefix = f"bench-rl:{run_id}:{round_}:{i}:"
                counter.forget(prefix)
                try:
                    samples.append(
                        limiters[name](url, prefix, REDIS_WORKLOAD, opts.redis_checks, counter)
                    )
                finally:
                    counter.forget(prefix)
                print(f"round {round_}/{opts.rounds}  Redis: {name:60} {samples[-1]}", flush=True)
    finally:
        counter.close()
    return local, remote


def run(opts: Options) -> tuple[bool, Results, Results]:
    """redis-server on CPU 0, started before this process moves itself to CPU 1."""
    with tempfile.TemporaryDirectory(prefix="kurz-bench-rl-") as tmp:
        procs = Processes(Path(tmp))
        try:
            port = free_port()
            procs.start("redis", redis_server_argv(port), dict(os.environ), Path(tmp))
            procs.wait_listening("redis", port)
            pinning = bool(pinned(0, []))
            with on_cpu(1) as moved:
                local, remote = measure(opts, f"redis://127.0.0.1:{port}/0")
            return pinning and moved, local, remote
        finally:
            procs.stop_all()


def speedup(results: Results, workload: str, name: str) -> float:
    pairs = zip(results[workload, name], results[workload, BASELINE], strict=True)
    return statistics.median(a.rate / b.rate for a, b in pairs)


def commands(per: dict[str, float]) -> str:
    parts = ", ".join(f"{name} {count:.3g}" for name, count in per.items())
    return f"{sum(per.values()):.3g} ({parts})" if parts else "0"


def rates(samples: list[Sample]) -> str:
    median = statistics.median(s.rate for s in samples)
    return f"{median:,.0f} | {', '.join(f'{s.rate:,.0f}' for s in samples)}"


def local_table(results: Results) -> list[str]:
    rows = [
        f"| workload | limiter | checks/s (median) | per round | allowed | ÷ {BASELINE} |",
        "|---|---|---:|---|---:|---:|",
    ]
    for (workload, name), samples in results.items():
        rows.append(
            f"| {workload} | {name} | {rates(samples)} | {samples[0].allowed:.1%} "
            f"| {speedup(results, workload, name):.2f} |"
        )
    return rows


def redis_table(results: Results) -> list[str]:
    rows = [
        "| limiter | checks/s (median) | per round | allowed | round trips per check "
        "| inside Lua per check | first check's round trips | executed per check, timed |",
        "|---|---:|---|---:|---|---|---|---|",
    ]
    for (_, name), samples in results.items():
        # The round with the most round trips per check, should any differ.
        worst = max(samples, key=lambda s: sum(s.trips.values()))
        rows.append(
            f"| {name} | {rates(samples)} | {samples[0].allowed:.1%} | {commands(worst.trips)} "
            f"| {commands(worst.lua)} | {commands(worst.first)} | {commands(worst.executed)} |"
        )
    return rows


def verdicts(local: Results, remote: Results) -> list[str]:
    lines = []
    for workload in dict.fromkeys(w for w, _ in local):
        for name in ("kurz MemoryLimiter.check_now", "kurz await MemoryLimiter.check"):
            ratio = speedup(local, workload, name)
            met = "met" if ratio >= GOAL_SPEEDUP else "NOT met"
            lines.append(
                f"{workload}: {name} / {BASELINE} = {ratio:.2f}x (goal >= {GOAL_SPEEDUP:g}x: {met})"
            )
    for (_, name), samples in remote.items():
        trips = sorted({sum(s.trips.values()) for s in samples})
        if name.startswith("kurz"):
            met = "met" if trips == [1.0] else "NOT met"
            shown = ", ".join(f"{t:.4g}" for t in trips)
            lines.append(f"{name}: Redis round trips per check = {shown} (goal 1: {met})")
        # The timed run should send what the counted one did (Lua calls may differ:
        # limits' fixed window sets an expiry on a key's first hit only).
        if any(s.executed.get(k) != v for s in samples for k, v in s.trips.items()):
            lines.append(f"{name}: the timed run sent other commands than the counted one")
    return lines


def environment(opts: Options, pinning: bool) -> list[str]:
    where = "redis-server on CPU 0, this process on CPU 1" if pinning else "no CPU pinning"
    return [
        f"- machine: {len(os.sched_getaffinity(0))} CPUs (nproc), {cpu_model()}, "
        f"Python {platform.python_version()}, {where}",
        f"- code: kurz {source_state()}",
        f"- libraries: limits {version('limits')}, redis-py {version('redis')}, "
        f"uvloop {version('uvloop')}; {redis_server_version()} started by the run, no persistence",
        f"- in process: {opts.iterations:,} checks per measurement, keys cycled in order, a "
        "fresh limiter each time; the same limit for both: kurz `Policy(limit, 60 s, "
        "burst=limit)`, limits `RateLimitItemPerMinute(limit)`",
        f"- Redis: workload `{REDIS_WORKLOAD.name}`, {opts.redis_checks:,} timed checks per "
        "measurement, fresh client, key prefix and script cache each time; round trips and "
        f"Lua calls per check from MONITOR over {WARMUP_CHECKS} untimed checks (after as many "
        "to open connections), executed per check from INFO commandstats over the timed "
        "ones; the round with the most round trips shown",
        f"- {opts.rounds} interleaved round(s), medians; ratios are medians of per-round ratios",
    ]


def report(opts: Options, pinning: bool, local: Results, remote: Results) -> list[str]:
    lines = [*environment(opts, pinning), "", "In process:", "", *local_table(local)]
    lines += ["", "Redis:", "", *redis_table(remote), ""]
    return lines + [f"- {v}" for v in verdicts(local, remote)]


# ---- figures ----------------------------------------------------------------------

# The API policy's defaults (ADR 0003): 120 per 60 s, bursts of up to 20.
API = Policy("api", 120, 60, 20)
STEP = 0.05  # seconds between the simulated client's attempts: 20 a second


@dataclass(frozen=True, slots=True)
class Decisions:
    """One client's attempts against kurz's MemoryLimiter on an injected clock."""

    times: list[float]
    allowed: list[bool]

    def cumulative(self) -> list[int]:
        total, out = 0, []
        for ok in self.allowed:
            total += ok
            out.append(total)
        return out

    def trailing(self, window: float) -> list[int]:
        """Requests allowed in the `window` seconds ending at each attempt."""
        out, start, inside = [], 0, 0
        for i, t in enumerate(self.times):
            inside += self.allowed[i]
            while self.times[start] <= t - window:
                inside -= self.allowed[start]
                start += 1
            out.append(inside)
        return out


def drive(policy: Policy) -> Decisions:
    """A client that attempts 20 requests a second in phases (on, quiet, on, on at the
    rate), checked by MemoryLimiter with its clock injected: no sleeps, every decision
    the same on every run."""
    now = 0.0
    limiter = MemoryLimiter(lambda: now)
    # (until, attempts every STEP?) : hammer 0-40 s, quiet to 70 s, hammer to 130 s,
    # then exactly the policy's rate (one every T) to 200 s.
    phases = ((40.0, STEP), (70.0, None), (130.0, STEP), (200.0, policy.interval))
    times: list[float] = []
    allowed: list[bool] = []
    start = 0.0
    for until, every in phases:
        if every is not None:
            i = 0
            while (now := start + i * every) < until:
                times.append(now)
                allowed.append(limiter.check_now(policy, "client").allowed)
                i += 1
        start = until
    return Decisions(times, allowed)


def draw_decisions(policy: Policy) -> None:
    d = drive(policy)
    rate = policy.limit / policy.window
    window = float(policy.window)
    # Plotted every half second (the series' points, thinned: the file stays small); the
    # trailing window's peak is taken over every attempt.
    every = max(1, round(0.5 / STEP))
    shown = range(0, len(d.times), every)
    times = [d.times[i] for i in shown]
    cumulative, trailing = d.cumulative(), d.trailing(window)
    fig, (left, right) = figures.grid(1, 2, width=9.0, height=3.6)
    fig.suptitle(
        f"kurz MemoryLimiter (GCRA), policy {policy.limit}/{policy.window}s;burst={policy.burst}"
        ", one client on an injected clock (simulated time, no wall clock)",
        x=0.01, ha="left", fontsize=10,
    )  # fmt: skip
    left.set_title("Allowed since t=0 against the bound", loc="left", fontsize=9)
    left.plot(times, [i + 1 for i in shown], label="attempted", color=figures.COLORS[5])
    left.plot(times, [cumulative[i] for i in shown], label="allowed", color=figures.COLORS[0])
    left.plot(
        times, [policy.burst + rate * t for t in times],
        label=f"burst + rate·t = {policy.burst} + {rate:g}/s · t", color=figures.COLORS[1],
        linestyle="--",
    )  # fmt: skip
    left.set_xlabel("simulated time (s)")
    left.set_ylabel("requests")
    left.set_ylim(0, (policy.burst + rate * d.times[-1]) * 1.6)
    left.legend(loc="upper left")
    right.set_title(f"Allowed in the trailing {policy.window} s", loc="left", fontsize=9)
    right.plot(
        times, [trailing[i] for i in shown], label=f"allowed (peak {max(trailing)})",
        color=figures.COLORS[0],
    )  # fmt: skip
    right.axhline(policy.limit, label=f"q = {policy.limit}", color=figures.COLORS[2],
                  linestyle=":")  # fmt: skip
    right.axhline(
        policy.burst + policy.limit, label=f"burst + q = {policy.burst + policy.limit}",
        color=figures.COLORS[1], linestyle="--",
    )  # fmt: skip
    right.set_xlabel("simulated time (s)")
    right.set_ylabel("requests")
    right.set_ylim(0, (policy.burst + policy.limit) * 1.15)
    right.legend(loc="lower right")
    figures.save(fig, "designs/figures/rate-limiter-decisions.svg")


def draw_rates(local: Results, remote: Results) -> None:
    """checks/s by limiter (medians): wall-clock, on the machine as loaded as it was."""
    from matplotlib.ticker import StrMethodFormatter

    fig, (left, right) = figures.grid(1, 2, width=9.0, height=4.2)
    fig.suptitle(
        "Rate-limit checks per second, kurz against the limits library "
        "(wall clock, medians; shared 2-CPU machine, loaded)",
        x=0.01, ha="left", fontsize=10,
    )  # fmt: skip
    workloads = list(dict.fromkeys(w for w, _ in local))
    names = list(dict.fromkeys(n for _, n in local))
    width = 0.8 / len(names)
    top = 0.0
    for i, name in enumerate(names):
        values = [statistics.median(s.rate for s in local[w, name]) for w in workloads]
        top = max(top, *values)
        xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(workloads))]
        left.bar(xs, values, width, label=name)
    labels = [w.replace(", ", "\n").replace(" (", "\n(") for w in workloads]
    left.set_xticks(range(len(workloads)), labels, fontsize=7)
    left.set_ylim(0, top * 1.45)
    left.set_title("In process (MemoryLimiter vs MemoryStorage)", loc="left", fontsize=9)
    left.set_ylabel("checks per second")
    left.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    left.legend(loc="upper left", fontsize=7, ncol=2)
    names = [n for _, n in remote]
    values = [statistics.median(s.rate for s in samples) for samples in remote.values()]
    colors = [figures.COLORS[0 if n.startswith("kurz") else 2] for n in names]
    right.barh(range(len(names)), values, color=colors)
    labels = [n.replace(", ", ",\n", 1).replace("Redis ", "Redis\n", 1) for n in names]
    right.set_yticks(range(len(names)), labels, fontsize=7)
    right.invert_yaxis()
    right.set_title("On Redis, 1,000 keys", loc="left", fontsize=9)
    right.set_xlabel("checks per second")
    right.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    figures.save(fig, "designs/figures/rate-limiter-checks.svg")


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ratelimit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--iterations", type=int, default=200_000, help="in-process checks")
    parser.add_argument("--redis-checks", type=int, default=10_000, help="Redis checks")
    parser.add_argument("--concurrency", type=int, default=32, help="tasks for kurz+Redis")
    parser.add_argument("--no-record", action="store_true", help="do not append to the docs")
    args = parser.parse_args(argv)
    if min(args.rounds, args.concurrency) < 1 or min(args.iterations, args.redis_checks) < 1_000:
        parser.error("--rounds and --concurrency >= 1; --iterations and --redis-checks >= 1000")
    return Options(**vars(args))


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    opts = parse_args(argv)
    try:
        pinning, local, remote = run(opts)
    except (BenchError, redis.RedisError) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; redis-server stopped", file=sys.stderr)
        return 130
    lines = report(opts, pinning, local, remote)
    draw_decisions(API)
    draw_rates(local, remote)
    harness.publish(
        "rate-limit checks", lines,
        target="bench-ratelimit", module="bench.ratelimit", argv=argv, keep=not opts.no_record,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
