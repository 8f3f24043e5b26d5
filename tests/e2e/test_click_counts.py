"""Click counts are exact end to end: 50,000 redirects against `kurz serve`, counted
once each by the stats API, embedded (a graceful restart in between) and scaled out
(through the Redis Stream, with one of two workers killed while it holds entries)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from kurz.analytics.stream import GROUP, STREAM
from tests.e2e.load import BROWSER, GOOGLEBOT, Load, send
from tests.e2e.support import KURZ, Server, figure, kurz_env, new_key, run
from tests.support import RedisServer

CLICKS = 50_000
BOTS = 500
HEADS = 200
# Only so that a broken pipeline fails the test instead of hanging it: nothing is
# asserted about speed.
PATIENCE = 180.0
# Redirects sent before a worker is killed, in the scaled-out test.
KILL_AFTER = 15_000


def setup(server: Server, cwd: Path) -> tuple[str, str]:
    """An admin key (the metrics need one) and a link: (secret, code)."""
    secret = new_key(server.env, cwd, "clicks", admin=True)
    made = httpx.post(
        f"{server.url}/api/v1/links",
        json={"url": "https://example.com/counted"},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert made.status_code == 201, made.text
    code: str = made.json()["code"]
    return secret, code


def totals(server: Server, secret: str, code: str, since: datetime) -> dict[str, int]:
    """The link's totals from the stats API, over a range from `since` to beyond now."""
    response = httpx.get(
        f"{server.url}/api/v1/links/{code}/stats",
        params={
            "from": (since - timedelta(hours=1)).isoformat(),
            "to": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
            "interval": "hour",
        },
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 200, response.text
    counts: dict[str, int] = response.json()["totals"]
    return counts


def metrics(server: Server, secret: str) -> dict[str, float]:
    response = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200, response.text
    values = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.split()
            values[name] = float(value)
    return values


def stop_gracefully(server: Server) -> None:
    """SIGTERM, as an orchestrator stops kurz: it must finish its shutdown (writing what
    it queued) and then end. uvicorn re-raises the signal once shut down, so a clean
    stop ends by SIGTERM, the Unix convention (systemd counts it as a success)."""
    server.proc.terminate()
    try:
        code = server.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        raise AssertionError(f"kurz serve ignored SIGTERM: {server.output()}") from None
    output = server.output()
    assert code in (0, -signal.SIGTERM), f"kurz serve exited {code}: {output}"
    assert "Application shutdown complete" in output, output


def started(cwd: Path, env: dict[str, str]) -> Server:
    server = Server(cwd, env)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


def test_embedded_counts_every_click_once_across_a_graceful_restart(tmp_path: Path) -> None:
    env = kurz_env(
        KURZ_DATABASE_URL=f"sqlite:///{tmp_path}/kurz.db",
        KURZ_RATELIMIT_REDIRECT="off",
        KURZ_RATELIMIT_API="off",
    )
    since = datetime.now(UTC)
    load = Load.of(people=CLICKS, bots=BOTS, heads=HEADS)
    server = started(tmp_path, env)
    try:
        secret, code = setup(server, tmp_path)
        began = time.monotonic()
        asyncio.run(send(load, f"{server.url}/{code}"))
        took = time.monotonic() - began
        print(f"\n{len(load.requests)} redirects in {took:.1f} s")
        assert load.answers == {
            ("GET", BROWSER, 302): CLICKS,
            ("GET", GOOGLEBOT, 302): BOTS,
            ("HEAD", BROWSER, 302): HEADS,
        }
        queued = metrics(server, secret)
        assert queued["kurz_clicks_queued_total"] == CLICKS + BOTS, queued
        assert queued["kurz_clicks_dropped_total"] == 0, queued
        stop_gracefully(server)
    finally:
        server.stop()

    again = started(tmp_path, env)
    try:
        counted = totals(again, secret, code, since)
    finally:
        again.stop()
    assert (counted["clicks"], counted["bot_clicks"]) == (CLICKS, BOTS), counted


class Workers:
    """`kurz worker` processes, each logging to a file of its own."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        with (self.cwd / f"{name}.log").open("wb") as log:
            self.procs[name] = subprocess.Popen(
                [KURZ, "worker"], env=self.env, cwd=self.cwd, stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

    def log(self, name: str) -> str:
        return (self.cwd / f"{name}.log").read_text()

    def consumer(self, name: str) -> str:
        """The worker's name, which is its consumer's name in the group."""
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            for line in self.log(name).splitlines():
                if found := re.search(r" worker (\S+) running$", line):
                    return found.group(1)
            assert self.procs[name].poll() is None, self.log(name)
            time.sleep(0.05)
        raise AssertionError(f"{name} did not start: {self.log(name)}")

    def stop(self, name: str) -> int:
        proc = self.procs[name]
        proc.terminate()
        try:
            return proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"{name} ignored SIGTERM: {self.log(name)}") from None

    def kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{self.log(name)}" for name in self.procs)


async def pending(redis: Redis) -> dict[str, int]:
    """Entries read and not yet acknowledged, per consumer of the group that holds any."""
    summary: dict[str, Any] = await redis.xpending(STREAM, GROUP)
    return {c["name"].decode(): int(c["pending"]) for c in summary["consumers"] or []}


async def unacknowledged(url: str) -> int:
    redis = Redis.from_url(url)
    try:
        summary: dict[str, Any] = await redis.xpending(STREAM, GROUP)
        return int(summary["pending"])
    finally:
        await redis.aclose()


async def kill_holding_entries(proc: subprocess.Popen[bytes], name: str, url: str) -> int:
    """SIGKILL the worker at a moment it holds entries it has not acknowledged, and
    return how many. It is stopped (SIGSTOP) while its entries are looked at, so that
    none is acknowledged between the look and the kill."""
    redis = Redis.from_url(url)
    deadline = time.monotonic() + PATIENCE
    try:
        while time.monotonic() < deadline:
            os.kill(proc.pid, signal.SIGSTOP)
            held = (await pending(redis)).get(name, 0)
            if held:
                proc.kill()
                proc.wait()
                return held
            os.kill(proc.pid, signal.SIGCONT)
            await asyncio.sleep(0.005)
    finally:
        await redis.aclose()
    raise AssertionError(f"{name} never held an entry")


def test_stream_counts_every_click_once_with_a_worker_killed(
    tmp_path: Path, empty_postgres_url: str, redis_server: RedisServer
) -> None:
    env = kurz_env(
        KURZ_DATABASE_URL=empty_postgres_url,
        KURZ_REDIS_URL=redis_server.url,
        KURZ_EMBEDDED_WORKER="false",
        KURZ_RATELIMIT_REDIRECT="off",
        KURZ_RATELIMIT_API="off",
        KURZ_ANALYTICS_CLAIM_IDLE="2",
    )
    migrated = run(["migrate"], env, tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    since = datetime.now(UTC)
    load = Load.of(people=CLICKS)
    workers = Workers(tmp_path, env)
    servers: list[Server] = []
    try:
        workers.start("doomed")
        workers.start("survivor")
        servers.append(web := started(tmp_path, env))
        secret, code = setup(web, tmp_path)
        doomed = workers.consumer("doomed")
        workers.consumer("survivor")

        async def load_and_kill() -> tuple[int, int]:
            reached = load.marks[KILL_AFTER] = asyncio.Event()

            async def killer() -> tuple[int, int]:
                await reached.wait()
                held = await kill_holding_entries(workers.procs["doomed"], doomed, redis_server.url)
                return load.done, held

            _, (sent, held) = await asyncio.gather(send(load, f"{web.url}/{code}"), killer())
            return sent, held

        began = time.monotonic()
        sent, held = asyncio.run(load_and_kill())
        print(f"\n{CLICKS} redirects in {time.monotonic() - began:.1f} s; a worker killed")
        print(f"after {sent} of them, holding {held} unacknowledged stream entries")
        assert sent < CLICKS
        assert load.answers == {("GET", BROWSER, 302): CLICKS}
        queued = metrics(web, secret)
        assert queued["kurz_clicks_queued_total"] == CLICKS, queued
        assert queued["kurz_clicks_dropped_total"] == 0, queued
        # Its queue goes to the stream before it exits.
        stop_gracefully(web)

        # A fresh web process to read the stats through: it consumes nothing.
        servers.append(reader := started(tmp_path, env))
        deadline = time.monotonic() + PATIENCE
        while (counted := totals(reader, secret, code, since))["clicks"] < CLICKS:
            assert time.monotonic() < deadline, (counted, workers.logs())
            time.sleep(0.2)
        while asyncio.run(unacknowledged(redis_server.url)):
            assert time.monotonic() < deadline, workers.logs()
            time.sleep(0.2)
        figure("a worker", "its click batches", f"{held} held when killed; all {CLICKS} clicks "
               f"counted once, {time.monotonic() - began:.1f} s after the first redirect "
               "(claimed after 2 s idle)")  # fmt: skip
        # Nothing more may arrive once the survivor has stopped: the counts are final.
        assert workers.stop("survivor") == 0, workers.log("survivor")
        counted = totals(reader, secret, code, since)
        assert (counted["clicks"], counted["bot_clicks"]) == (CLICKS, 0), counted
        assert asyncio.run(unacknowledged(redis_server.url)) == 0
    finally:
        for server in servers:
            server.stop()
        workers.kill_all()
