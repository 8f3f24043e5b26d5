"""Running `kurz` as a user does: the CLI, and `kurz serve` as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support import free_port

KURZ = str(Path(sys.executable).with_name("kurz"))
# How long a process may take to start or a command to finish: only so that a hang
# fails the test instead of stopping the run. A loaded host takes its time; nothing is
# asserted about speed.
PATIENCE = 300.0
# Set by bench/lab/cap.py, which runs the failure tests and tabulates what they saw.
FIGURES = os.environ.get("KURZ_LAB_FIGURES")


def figure(failure: str, what: str, value: object) -> None:
    """Note what a test saw while a dependency was down, for docs/lab/cap.md's table;
    printed always (pytest -s shows it), kept when the lab runs the test."""
    print(f"\n[{failure}] {what}: {value}")
    if FIGURES:
        with open(FIGURES, "a") as out:
            out.write(json.dumps({"failure": failure, "what": what, "value": value}) + "\n")


def kurz_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KURZ_")}
    env.update(overrides)
    return env


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KURZ, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )


def started_worker(env: dict[str, str], cwd: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    """`kurz worker ARGS`, once it has logged that it runs: the process (its output on
    a pipe, which `communicate` drains) and what it said until then. Read line by line
    as it writes them: no polling, whatever the host's load."""
    worker = subprocess.Popen(
        [KURZ, "worker", *args], env=env, cwd=cwd, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert worker.stdout is not None
    seen = ""
    while " running" not in seen:
        line = worker.stdout.readline()
        if not line:
            worker.wait(timeout=PATIENCE)
            raise AssertionError(f"kurz worker exited {worker.returncode}: {seen}")
        seen += line
    return worker, seen


def new_key(
    env: dict[str, str], cwd: Path, name: str, *, admin: bool = False, proxy: bool = False
) -> str:
    """An API key made by `kurz keys create`, as an operator makes one; its secret."""
    flags = [*(["--admin"] if admin else []), *(["--proxy"] if proxy else [])]
    made = run(["keys", "create", "--name", name, *flags], env, cwd)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


class Server:
    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.grpc_port = free_port()
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        self.env = {"KURZ_GRPC_PORT": str(self.grpc_port), **env, "KURZ_PORT": str(self.port)}
        self.cwd = cwd
        # A file, not a pipe: nobody reads a pipe while the server runs, and a server
        # that logs a page of warnings (a database down) would block once it was full.
        self.log = cwd / f"kurz-serve-{self.port}.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [KURZ, "serve"], env=self.env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"kurz serve exited: {self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"kurz serve did not become ready within {PATIENCE:g} s")

    def output(self) -> str:
        """What the server has printed so far."""
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, as in a crash."""
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
