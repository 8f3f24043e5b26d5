"""What starting kurz costs: CPU of `kurz --help`, `kurz --version` and `kurz serve`
until it answers /healthz, and the size of an install by extra.

    python -m bench.startup [--src DIR ...] [--rounds 5] [--sizes]

- CPU: each command in a new process (`python -m kurz`, with PYTHONPATH naming each
  `--src`, so a base tree and this one run alternately in one session; after a first
  run that writes their bytecode, as an install has it), the whole
  process's user + system CPU from os.wait4; for `kurz serve` (SQLite in a temporary
  folder, gRPC off, migrated first) the CPU spent until /healthz first answers, read
  from /proc/PID/stat, before it is stopped: its first start (which makes the initial
  admin) and a restart on the same database. Median over rounds.
- Imports: the ten slowest modules under `python -X importtime -m kurz --help`.
- Sizes (`--sizes`, slow): `pip install` of this tree into fresh virtual
  environments, runtime only and with each extra, with the pins of constraints.txt;
  the size of each site-packages (du).

The issue's goals: `kurz --help` under 0.3 s of CPU, `kurz serve` ready under 1 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")
EXTRAS = ("", "postgres", "redis", "grpc", "otel", "postgres,redis,grpc,otel")


def _env(src: Path, **extra: str) -> dict[str, str]:
    # Bytecode written and read, as from an install (pip compiles what it installs).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KURZ_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env["PYTHONPATH"] = f"{src}{os.pathsep}{ROOT}"
    env.update(extra)
    return env


def command_cpu(src: Path, args: list[str]) -> float | None:
    """User + system CPU seconds of one `python -m kurz ARGS`, the whole process; None
    if that tree has no such command (`--version` before it existed)."""
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kurz", *args], env=_env(src), stdout=null, stderr=null
        )
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        return None
    return usage.ru_utime + usage.ru_stime


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _serve_once(env: dict[str, str], port: int) -> tuple[float, float]:
    """CPU of one `kurz serve` until /healthz answers, and of its whole life when
    stopped (SIGTERM) right after."""
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kurz", "serve"], env=env, stdout=null, stderr=null
        )
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"kurz serve exited {proc.returncode}")
            try:
                with urllib.request.urlopen(url, timeout=5):
                    break
            except OSError:
                time.sleep(0.01)
        ready = _cpu_of(proc.pid)
    finally:
        proc.terminate()
        _, _, usage = os.wait4(proc.pid, 0)
    return ready, usage.ru_utime + usage.ru_stime


def serve_cpu(src: Path) -> tuple[float, float, float]:
    """CPU seconds of `kurz serve` (SQLite, gRPC off) until /healthz answers: its first
    start on a migrated database (which makes the initial admin, hashing a password),
    and a restart on the same database; and the whole first process's, stopped right
    after it answered."""
    with tempfile.TemporaryDirectory() as folder:
        port = _free_port()
        env = _env(
            src,
            KURZ_DATABASE_URL=f"sqlite+aiosqlite:///{folder}/kurz.db",
            KURZ_PORT=str(port),
            KURZ_GRPC_PORT="0",
            KURZ_INITIAL_ADMIN_EMAIL="admin@example.com",
            KURZ_INITIAL_ADMIN_PASSWORD_FILE=str(Path(folder) / "password"),
        )
        Path(folder, "password").write_text("correct horse battery staple\n")
        subprocess.run(
            [sys.executable, "-m", "kurz", "migrate"], env=env, check=True, capture_output=True
        )
        first, whole = _serve_once(env, port)
        again, _ = _serve_once(env, port)
        return first, again, whole


def slowest_imports(src: Path, count: int = 10) -> list[tuple[int, str]]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kurz", "--help"],
        env=_env(src),
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|")
            if cumulative.strip().isdigit():
                rows.append((int(cumulative), name.rstrip()))
    return sorted(rows, reverse=True)[:count]


def install_sizes() -> list[tuple[str, float, float]]:
    """(extra, MiB of site-packages, seconds to install) for each of EXTRAS."""
    results = []
    for extra in EXTRAS:
        with tempfile.TemporaryDirectory() as folder:
            venv = Path(folder) / "venv"
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            target = str(ROOT) + (f"[{extra}]" if extra else "")
            began = time.monotonic()
            pins = str(ROOT / "constraints.txt")
            subprocess.run([str(venv / "bin/pip"), "install", "-q", "-c", pins, target], check=True)
            took = time.monotonic() - began
            site = next(venv.glob("lib/python*/site-packages"))
            # pip itself comes with every venv: not part of kurz's install.
            for own in site.glob("pip*"):
                shutil.rmtree(own) if own.is_dir() else own.unlink()
            kib = int(subprocess.run(["du", "-sk", str(site)], capture_output=True, text=True,
                                     check=True).stdout.split()[0])  # fmt: skip
            results.append((extra or "runtime", kib / 1024, took))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", type=Path, action="append", help="a tree's src folder")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sizes", action="store_true", help="also install sizes (slow)")
    args = parser.parse_args()
    sources: list[Path] = [path.resolve() for path in args.src or [ROOT / "src"]]
    print(f"# {time.strftime('%Y-%m-%d')}, Python {sys.version.split()[0]}, {args.rounds} rounds")
    results: dict[Path, dict[str, list[float]]] = {src: {} for src in sources}
    commands = {"kurz --help": ["--help"], "kurz --version": ["--version"]}
    for src in sources:  # a round to write each tree's bytecode
        serve_cpu(src)
    for _ in range(args.rounds):
        for src in sources:
            seen = results[src]
            for what, argv in commands.items():
                cpu = command_cpu(src, argv)
                if cpu is not None:
                    seen.setdefault(what, []).append(cpu)
            first, again, whole = serve_cpu(src)
            seen.setdefault("kurz serve, until /healthz answers", []).append(first)
            seen.setdefault("kurz serve again (a restart), until /healthz answers", []).append(
                again
            )
            seen.setdefault("kurz serve, started and stopped", []).append(whole)
    for src in sources:
        print(f"\n{src}\n\n| command | CPU s (median) | min | max |\n|---|---:|---:|---:|")
        for what, times in results[src].items():
            print(f"| {what} | {statistics.median(times):.3f} | {min(times):.3f} "
                  f"| {max(times):.3f} |")  # fmt: skip
        print("\nSlowest imports of `kurz --help` (cumulative µs):")
        for micros, name in slowest_imports(src):
            print(f"  {micros:>9,} {name.strip()}")
    if args.sizes:
        print("\n| install | site-packages MiB | install s |\n|---|---:|---:|")
        for extra, mib, took in install_sizes():
            print(f"| {extra} | {mib:.1f} | {took:.0f} |")


if __name__ == "__main__":
    main()
