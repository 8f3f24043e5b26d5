"""What every load benchmark here needs: servers in the background, wrk, CPU pinning.

The machine is shared and has two cores: the server under test runs on CPU 0 and
wrk on CPU 1, and benchmarks compare ratios measured side by side in one run.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent
READY_TIMEOUT = 30.0


class BenchError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Sample:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    socket_errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def __str__(self) -> str:
        errors = f"  ({self.socket_errors} socket errors)" if self.socket_errors else ""
        return f"{self.rate:>9,.0f} req/s  p99 {self.p99_ms:6.2f} ms{errors}"


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


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine()
    names = (ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name"))
    return next(names, platform.machine())
