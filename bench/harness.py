"""What every load benchmark here needs: servers in the background, wrk, CPU pinning.

The machine is shared and has two cores: the server under test runs on CPU 0 and
wrk on CPU 1, and benchmarks compare ratios measured side by side in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import asyncpg
import httpx
import redis

BIN = Path(sys.executable).parent
READY_TIMEOUT = 30.0


T = TypeVar("T")


class BenchError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Sample:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    # CPU time the server process used during the measured run (user + system).
    server_cpu_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us(self) -> float:
        """Server CPU time per request. Unlike the rate, it does not move when a
        neighbour on the shared host takes the CPU away (steal, or wrk starved)."""
        return self.server_cpu_seconds / self.requests * 1e6 if self.requests else 0.0

    def __str__(self) -> str:
        errors = f"  ({self.socket_errors} socket errors)" if self.socket_errors else ""
        cpu = f"  {self.cpu_us:5.1f} us CPU/req" if self.server_cpu_seconds else ""
        return f"{self.rate:>9,.0f} req/s  p99 {self.p99_ms:6.2f} ms{cpu}{errors}"


def percentile(values: Iterable[float], q: float) -> float:
    """The q-quantile by nearest rank (0.99: the value 99% of them are at or below); NaN
    for no values."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise BenchError("wrk is not installed: `sudo apt-get install wrk` (Debian/Ubuntu)")
    print("installing wrk from the Debian packages ...", file=sys.stderr)
    install = ["apt-get", "install", "-y", "wrk"]
    if subprocess.run(install, stdout=subprocess.DEVNULL, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], stdout=subprocess.DEVNULL, check=False)
        subprocess.run(install, stdout=subprocess.DEVNULL, check=False)
    found = shutil.which("wrk")
    if not found:
        raise BenchError("could not install wrk with apt-get; install it and run again")
    return found


def instructions(module: str, *args: str) -> int:
    """Instructions that `python -m module --child *args` ran in all, every thread
    counted (valgrind's callgrind: its "Collected"), with a fixed hash seed so that
    runs agree. The module does the measured work when given --child."""
    argv = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, "-m", module, "--child", *args,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        what = " ".join([module, *args])
        raise BenchError(f"{what}: valgrind failed ({done.returncode}): {done.stderr[-2000:]}")
    return int(found.group(1))


def pinned(cpu: int, argv: list[str]) -> list[str]:
    """Server on CPU 0, wrk on CPU 1, so that they do not steal each other's core."""
    if len(os.sched_getaffinity(0)) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu), *argv]
    return argv


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Processes:
    """Servers this run started; each in its own session so that one signal stops it all."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                pinned(0, argv),
                env=env,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.running[name] = (proc, log)

    def wait_ready(self, name: str, url: str, status: int) -> None:
        proc, log = self.running[name]
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                if httpx.get(url, timeout=2).status_code == status:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        tail = log.read_text(errors="replace")[-2000:]
        raise BenchError(f"{name} did not answer {url} with {status}; its output:\n{tail}")

    def wait_listening(self, name: str, port: int) -> None:
        """For servers that speak no HTTP (redis-server): ready once the port accepts."""
        proc, log = self.running[name]
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        tail = log.read_text(errors="replace")[-2000:]
        raise BenchError(f"{name} is not listening on port {port}; its output:\n{tail}")

    def cpu_seconds(self, name: str) -> float:
        """User + system CPU time a running server has used so far (Linux /proc).

        Summed over its session, which is the server and any worker processes it
        started (granian runs its workers as children).
        """
        proc, _ = self.running[name]
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                # The fields after the parenthesised command name: the session is the
                # 4th of them, utime and stime (in clock ticks) the 12th and 13th.
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue  # the process ended meanwhile
            if int(fields[3]) == proc.pid:
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self, name: str) -> None:
        proc, _ = self.running.pop(name)
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)


@contextmanager
def on_cpu(cpu: int) -> Iterator[bool]:
    """Run this process itself on one CPU (the client side of a pair), then restore.

    Start pinned() servers before entering: inside, this process sees one CPU only.
    Yields whether it pinned (not on a one-CPU machine).
    """
    before = os.sched_getaffinity(0)
    if len(before) < 2 or cpu not in before:
        yield False
        return
    os.sched_setaffinity(0, {cpu})
    try:
        yield True
    finally:
        os.sched_setaffinity(0, before)


def redis_server_argv(port: int) -> list[str]:
    """A throwaway redis-server: loopback only, nothing written to disk, in the foreground."""
    found = shutil.which("redis-server")
    if not found:
        raise BenchError("redis-server is not installed (Debian/Ubuntu: apt-get install redis)")
    return [
        found,
        *("--port", str(port), "--bind", "127.0.0.1", "--save", ""),
        *("--appendonly", "no", "--daemonize", "no"),
    ]


def redis_server_version() -> str:
    done = subprocess.run(
        [*redis_server_argv(0)[:1], "--version"], capture_output=True, text=True, check=False
    )
    words = done.stdout.split()
    return f"redis-server {words[2].removeprefix('v=')}" if len(words) > 2 else "redis-server"


class Watch:
    """What clients sent a Redis (round trips) and what ran inside Lua, between marks."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.tag = f"bench-mark-{uuid.uuid4().hex[:8]}"
        self.marks = 0
        # One per mark: command name -> count; "lua get" for a GET a script made.
        self.segments: list[Counter[str]] = []

    def mark(self) -> None:
        """End a segment. Sent and answered after the commands before it, so in order."""
        self.marks += 1
        self.client.echo(f"{self.tag}-{self.marks}")

    def read(self, monitor: redis.client.Monitor, most: int) -> None:
        self.segments = [Counter()]
        for _ in range(most):
            entry: dict[str, Any] = monitor.next_command()  # type: ignore[no-untyped-call]
            command: str = entry["command"]
            if command.startswith(f"ECHO {self.tag}-"):
                if len(self.segments) == self.marks:
                    return
                self.segments.append(Counter())
                continue
            name = command.split(" ", 1)[0].lower()
            self.segments[-1][f"lua {name}" if entry["client_type"] == "lua" else name] += 1
        raise BenchError(f"MONITOR: {self.marks} marks not all seen in {most} lines")


class RedisCommands:
    """Counts what a Redis that only this run talks to executes.

    INFO commandstats counts every command, including those a Lua script calls;
    MONITOR (slow, so only around untimed checks) tells the two apart.
    """

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=30)
        self.client.ping()

    def snapshot(self) -> dict[str, int]:
        stats = cast(dict[str, dict[str, int]], self.client.info("commandstats"))
        return {
            name.removeprefix("cmdstat_"): c.get("calls", 0) + c.get("rejected_calls", 0)
            for name, c in stats.items()
        }

    def since(self, before: dict[str, int], per: int) -> dict[str, float]:
        """Commands per `per` checks since `before`, leaving out INFO (this counting)."""
        spent = {k: v - before.get(k, 0) for k, v in self.snapshot().items() if k != "info"}
        return {k: v / per for k, v in sorted(spent.items()) if v}

    @contextmanager
    def watch(self, most: int) -> Iterator[Watch]:
        """MONITOR while the block runs; `most` bounds the lines read when it ends."""
        watch = Watch(self.client)
        with self.client.monitor() as monitor:  # type: ignore[no-untyped-call]
            yield watch
            watch.read(monitor, most)

    def forget(self, prefix: str) -> None:
        """Drop the script cache and the keys under `prefix`: a fresh start for a limiter."""
        self.client.script_flush()
        keys = list(self.client.scan_iter(match=f"{prefix}*", count=1_000))
        for i in range(0, len(keys), 1_000):
            self.client.unlink(*keys[i : i + 1_000])

    def close(self) -> None:
        self.client.close()


def kurz_cli(args: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [str(BIN / "kurz"), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"kurz {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def run_wrk(
    wrk: str,
    url: str,
    script: Path,
    script_args: list[str],
    *,
    seconds: int,
    threads: int,
    connections: int,
) -> dict[str, Any]:
    """Run wrk pinned to CPU 1; the script must print one line `BENCH_JSON {...}`."""
    flags = f"-t {threads} -c {connections} -d {seconds}s -s {script}".split()
    done = subprocess.run(
        pinned(1, [wrk, *flags, url, "--", *script_args]),
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
    figures: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
    return figures


def source_state() -> str:
    """The commit measured, and whether src/ differed from it (git without locks)."""
    git, root = shutil.which("git"), Path(__file__).resolve().parents[1]
    if not git:
        return "unknown commit"
    head, changes = (
        subprocess.run(
            [git, "--no-optional-locks", *args], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        for args in (["rev-parse", "--short", "HEAD"], ["status", "--porcelain", "--", "src"])
    )
    return f"{head or 'unknown commit'}{' + uncommitted changes in src/' if changes else ''}"


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine()
    names = (ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name"))
    return next(names, platform.machine())


# The log of runs; docs/benchmarks.md is its summary, brought up to date by hand.
RECORD = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "history.md"


def command_line(target: str, module: str, argv: Sequence[str]) -> str:
    """How a run is reproduced: its make target, or the module with the arguments given."""
    return f"make {target}" if not argv else f"python -m {module} {shlex.join(argv)}"


def publish(
    title: str, lines: Sequence[str], *, target: str, module: str, argv: Sequence[str], keep: bool
) -> None:
    """Print a run's report, and with `keep` append it to the docs with its command."""
    print()
    print("\n".join(lines))
    if keep:
        record(title, command_line(target, module, argv), lines)


def record(title: str, command: str, lines: Sequence[str]) -> None:
    """Append one run's section, dated, with the command that made it, to the docs."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    heading = f"## {stamp} — {title}" if title else f"## {stamp}"
    section = [heading, "", f"Command: `{command}`", "", *lines, "", ""]
    with RECORD.open("a") as out:
        out.write("\n".join(section))
    print(f"appended to {RECORD.relative_to(RECORD.parents[2])}")


# Where benches make their PostgreSQL databases (each its own, dropped after).
PG_ADMIN = os.environ.get("KURZ_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


async def _pg_admin(statement: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@asynccontextmanager
async def migrated_database(backend: str, prefix: str) -> AsyncIterator[str]:
    """The URL of a fresh database with kurz's schema, for one run: a SQLite file, or
    a PostgreSQL database made on KURZ_BENCH_PG and dropped after."""
    from kurz.db import Database, upgrade  # kurz only where a bench needs it

    async def migrated(url: str) -> str:
        db = Database.from_url(url)
        await upgrade(db)
        await db.dispose()
        return url

    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix=f"kurz-{prefix}-") as tmp:
            yield await migrated(f"sqlite:///{tmp}/kurz.db")
        return
    name = f"kurz_bench_{prefix}_{os.getpid()}"
    await _pg_admin(f"CREATE DATABASE {name}")
    try:
        yield await migrated(PG_ADMIN.rsplit("/", 1)[0] + "/" + name)
    finally:
        await _pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@dataclass(frozen=True)
class BackendRun:
    """What a bench over both databases was asked for (bench.idempotency, bench.auth)."""

    requests: int
    rounds: int
    backends: tuple[str, ...]
    no_record: bool


def backend_run(
    argv: Sequence[str], *, prog: str, doc: str | None, requests: int, unit: str, rounds: int = 5
) -> BackendRun:
    """`argv` parsed: --requests (`unit` per mode and round), --rounds, --backends,
    --no-record."""
    parser = argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=requests, help=f"{unit} per mode and round")
    parser.add_argument("--rounds", type=int, default=rounds, help="rounds")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument("--no-record", action="store_true", help="do not append to the docs")
    args = parser.parse_args(argv)
    backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    if not set(backends) <= {"sqlite", "postgresql"} or args.requests < 10 or args.rounds < 1:
        parser.error("--backends from sqlite,postgresql; --requests >= 10; --rounds >= 1")
    return BackendRun(args.requests, args.rounds, backends, args.no_record)


def each_backend(
    run: BackendRun, measure: Callable[[str, BackendRun], Coroutine[Any, Any, T]]
) -> dict[str, T] | None:
    """`measure` on each backend asked for, in turn; None (said on stderr) if one failed."""
    results: dict[str, T] = {}
    try:
        for backend in run.backends:
            print(f"{backend}:", flush=True)
            results[backend] = asyncio.run(measure(backend, run))
    except (BenchError, OSError, asyncpg.PostgresError) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return None
    return results
