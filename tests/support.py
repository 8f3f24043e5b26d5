"""Test helpers that are not fixtures."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from fastapi import FastAPI
from redis.asyncio import Redis

from kurz.accounts import Cost, Passwords
from kurz.analytics.pipeline import Analytics
from kurz.analytics.stream import StreamConsumer
from kurz.app import create_app
from kurz.bootstrap import build
from kurz.config import Settings
from kurz.limits import ServiceLimits
from kurz.ratelimit import FallbackLimiter, MemoryLimiter, RedisLimiter
from kurz.types import Clock

# Argon2's smallest parameters: the apps under test hash passwords in milliseconds.
CHEAP_PASSWORDS = Cost(time_cost=1, memory_cost=8, parallelism=1)


def build_app(settings: Settings, clock: Clock) -> FastAPI:
    """The app under test: the one place tests build kurz (adapt it when create_app does)."""
    parts = build(settings, clock=clock, passwords=Passwords(CHEAP_PASSWORDS))
    if settings.redis_url:
        limits_on_clock(parts.limits, parts.redis.client(settings.redis_url), clock)
    return create_app(parts)


def limits_on_clock(limits: ServiceLimits, redis: Redis, clock: Clock) -> None:
    """Redis's limiter on the test's clock instead of Redis's TIME, which no test can
    move: the buckets stay in Redis, so that advancing the clock refills them in both
    deployments alike. (tests/integration/ratelimit checks TIME on its own.)"""
    limits.limiter = FallbackLimiter(RedisLimiter(redis, clock=clock), MemoryLimiter(clock))


async def record_queued_clicks(analytics: Analytics) -> None:
    """Record every click queued so far, as the deployment would: embedded, the drainer
    writes them to the database; scaled out, it adds them to the click stream and a
    consumer, a worker's part, records them (this one, as the tests run no worker)."""
    # A stop writes them all; the lifespan's own stop is then a no-op.
    await analytics.drainer.stop()
    redis = analytics.redis
    if redis is None:
        return
    # The drainer's stop added every queued click to the stream, so reading what the
    # group has not yet handed out records them all, with no waiting.
    await StreamConsumer(redis, analytics.store, name="tests").drain()


@asynccontextmanager
async def running(settings: Settings, clock: Clock) -> AsyncIterator[FastAPI]:
    """The app under test, its lifespan running (started and stopped) for the block."""
    app = build_app(settings, clock)
    async with app.router.lifespan_context(app):
        yield app


async def drop_connections(database_url: str) -> None:
    """Close the app's pooled connections to a PostgreSQL database from the server's
    side: its next use of one fails as a database that went away does (a 503), and the
    pool starts afresh."""
    conn = await asyncpg.connect(database_url, timeout=5)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()


class FakeClock:
    """A wall clock that moves only when a test says so."""

    def __init__(self, start: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def iso(self, offset: float = 0.0) -> str:
        return datetime.fromtimestamp(self.now + offset, UTC).isoformat()


class FileClock:
    """A wall clock kept in a file, for a test and the processes it starts to share:
    each process reads it on every call, and only the test moves it (`set`)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self) -> float:
        return float(self.path.read_text())

    def set(self, now: float) -> None:
        # Written aside and renamed into place, so that a reader never sees half of it.
        draft = self.path.with_name(self.path.name + ".draft")
        draft.write_text(repr(now))
        os.replace(draft, self.path)

    def advance(self, seconds: float) -> None:
        self.set(self() + seconds)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A redis-server of the test's own on a free port, which the test may stop and restart."""

    def __init__(self, port: int | None = None, *, options: Sequence[str] = ()) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        # redis-server options after the defaults, which they override: e.g.
        # ("--appendonly", "yes", "--dir", folder) for a Redis that keeps its data.
        self.options = tuple(options)
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", *self.options],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        # Generous: a loaded host can take seconds to start a process.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self.resume()
            self._proc.terminate()
            self._proc.wait(timeout=10)
        self._proc = None

    def kill(self) -> None:
        """SIGKILL, as in a crash: its data (none on disk, unless options say) goes with it."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(timeout=10)
        self._proc = None

    def pause(self) -> None:
        """SIGSTOP, as behind a dead link: it keeps its data and its connections, and
        answers nothing until resume(), however long the test takes meanwhile."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)


class PostgresServer:
    """A PostgreSQL cluster of the test's own (initdb in a temporary folder), which the
    test may stop and start again without touching the machine's shared server.

    PostgreSQL refuses to run as root; as root, it runs as the `postgres` user.
    """

    def __init__(self) -> None:
        self.bin = _postgres_bin()
        # Not under pytest's tmp_path: the postgres user could not reach into it.
        self.folder = Path(tempfile.mkdtemp(prefix="kurz-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def init(self) -> None:
        if self._as:
            shutil.chown(self.folder, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "--no-instructions")  # fmt: skip

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c full_page_writes=off")  # fmt: skip
        log = str(self.folder / "postgres.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        """A fast shutdown: sessions are ended, the server is gone when this returns."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        """Stop the server if it runs, and delete its files."""
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [*self._as, str(self.bin / tool), *args], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout}{done.stderr}")


def _postgres_bin() -> Path:
    """The newest installed PostgreSQL's programs (Debian keeps them off the PATH)."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: p.parts[-3])
    if not found:
        raise FileNotFoundError("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
    return found[-1].parent


# A place in a MaxMind DB record: (ISO country code or None, English city name or None).
Places = dict[str, tuple[str | None, str | None]]


def mmdb(path: Path, places: Places) -> Path:
    """A MaxMind DB file at `path` (IPv6, IPv4 mapped in as MaxMind's own files do)
    whose networks ("81.2.69.0/24", "2a02:cf40::/29") hold GeoLite2 City's record
    layout: a country's ISO code and a city's names, each left out when None."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(
        ip_version=6, ipv4_compatible=True, database_type="GeoLite2-City", languages=["en"]
    )
    for network, (country, city) in places.items():
        record: dict[str, object] = {}
        if country is not None:
            record["country"] = {"iso_code": country, "names": {"en": country}}
        if city is not None:
            record["city"] = {"geoname_id": 1, "names": {"en": city, "de": f"{city} (de)"}}
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path
