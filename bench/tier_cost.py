"""CPU per redirect by the tier that answers it: L1, L2 (L1 off) or SQL (no cache).

    python -m bench.tier_cost [--requests 2000] [--rounds 3] [--no-record]

No HTTP server: the ASGI app is called in process, by 32 concurrent tasks, so the
figure is kurz's own CPU per redirect (process time / redirects) without the
server's parsing. L2 is one redis-server this run starts. Rounds are interleaved
and the median is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from bench import figures
from bench.harness import BenchError, command_line, free_port, record, redis_server_argv
from kurz.app import KurzApp, create_app
from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate
from kurz.bootstrap import build
from kurz.clock import system_clock, utcnow
from kurz.config import Settings
from kurz.db import READ_COMMITTED

TASKS = 32
LINKS = 100
MODES = ("L1 hit", "L2 (L1 off)", "SQL (no cache)")


def settings(mode: str, tmp: Path, redis_url: str) -> Settings:
    common: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp}/{mode[:2].strip()}.db",
        "ratelimit_redirect": "off",
        "ratelimit_api": "off",
        "grpc_port": 0,
    }
    if mode == MODES[1]:
        common.update(cache_nodes=(redis_url,), redirect_cache_size=0)
    if mode == MODES[2]:
        common.update(redirect_cache_size=0)
    return Settings(**common)


def scope(code: str) -> dict[str, Any]:
    path = f"/{code}"
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80), "state": {},
    }  # fmt: skip


async def make_links(app: KurzApp) -> list[str]:
    state = app.state.kurz
    async with state.db.write(READ_COMMITTED) as conn:
        key_in = ApiKeyCreate(name="bench")
        secret = (
            await key_queries.create(conn=conn, key_in=key_in, now=utcnow(system_clock))
        ).secret
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://b", headers=headers) as c:
        made = [
            await c.post("/api/v1/links", json={"url": f"https://e.com/{i}"}) for i in range(LINKS)
        ]
    return [response.json()["code"] for response in made]


async def cpu_per_redirect(app: KurzApp, codes: list[str], requests: int) -> float:
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def task(j: int, n: int) -> None:
        for i in range(n):
            await app(scope(codes[(i * 7 + j) % len(codes)]), receive, send)

    each = max(1, requests // TASKS)
    await asyncio.gather(*(task(j, 10) for j in range(TASKS)))  # warm-up: fills the tiers
    start = time.process_time()
    await asyncio.gather(*(task(j, each) for j in range(TASKS)))
    spent = time.process_time() - start
    if set(statuses) != {302}:
        raise BenchError(f"expected only 302s, got {sorted(set(statuses))}")
    return spent / (each * TASKS) * 1e6


async def measure(mode: str, tmp: Path, redis_url: str, requests: int) -> float:
    app = create_app(build(settings(mode, tmp, redis_url)))
    async with app.router.lifespan_context(app):
        codes = await make_links(app)
        return await cpu_per_redirect(app, codes, requests)


def plot(results: dict[str, list[float]], requests: int) -> None:
    """CPU per redirect by tier, the median a bar and each round a dot (log scale),
    beside docs/designs/tiered-cache.md."""
    fig, ax = figures.new(
        f"CPU per redirect by the tier that answers it (in process, SQLite, one redis-server;"
        f"\n{requests:,} redirects a round, process time, shared 2-CPU host under load)",
        "", "CPU per redirect (µs, log scale)", height=3.4,
    )  # fmt: skip
    medians = [statistics.median(runs) for runs in results.values()]
    bars = ax.bar(list(results), medians, color=figures.COLORS[: len(results)], width=0.5)
    ax.bar_label(bars, [f"{m:,.1f} µs" for m in medians], padding=3)
    for i, runs in enumerate(results.values()):
        ax.plot([i] * len(runs), runs, linestyle="none", marker="o", markersize=3, color="black")
    ax.set_yscale("log")
    ax.set_ylim(top=max(max(r) for r in results.values()) * 3)
    ax.grid(axis="x", visible=False)
    figures.save(fig, "designs/figures/tiered-cache-cpu.svg")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tier_cost", description=__doc__)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if shutil.which("redis-server") is None:
        print("redis-server is not installed", file=sys.stderr)
        return 1
    port = free_port()
    redis = subprocess.Popen(redis_server_argv(port), stdout=subprocess.DEVNULL)
    results: dict[str, list[float]] = {mode: [] for mode in MODES}
    try:
        time.sleep(0.5)
        for round_ in range(args.rounds):
            for mode in MODES:
                with tempfile.TemporaryDirectory(prefix="kurz-tiers-") as tmp:
                    us = asyncio.run(
                        measure(mode, Path(tmp), f"redis://127.0.0.1:{port}/0", args.requests)
                    )
                results[mode].append(us)
                print(f"round {round_ + 1}/{args.rounds}  {mode:15} {us:8.1f} us CPU/redirect")
    finally:
        redis.terminate()
        redis.wait()
    lines = ["| answered from | CPU per redirect (median) | rounds |", "|---|---:|---|"]
    for mode, runs in results.items():
        rounds = ", ".join(f"{r:.1f}" for r in runs)
        lines.append(f"| {mode} | {statistics.median(runs):.1f} us | {rounds} |")
    print("\n".join(lines))
    plot(results, args.requests)
    if not args.no_record:
        given = sys.argv[1:] if argv is None else list(argv)
        command = command_line("bench-tiers", "bench.tier_cost", given)
        record("CPU per redirect by tier (in process)", command, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
