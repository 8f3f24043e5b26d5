"""bench.webhooks' end-to-end part: kurz as `kurz serve` builds it, on a SQLite file and
a clock that moves only when told, delivering to a receiver on 127.0.0.1.

Nothing here is timed: it counts statements and deliveries, and notes attempt times
on the simulated clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy import event
from standardwebhooks import Webhook

from bench.harness import BenchError
from kurz.app import create_app
from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate, scopes_for
from kurz.bootstrap import Parts, build
from kurz.clock import utcnow
from kurz.config import Settings
from kurz.db import READ_COMMITTED, Database, upgrade
from kurz.db.tables import jobs
from kurz.jobs import Worker
from kurz.webhooks.outbox import DELIVER

# The simulated clock starts here (UTC midnight: no schedule's tick is due mid-run).
START = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
ENDPOINT_STEPS = (0, 1, 5, 20)  # 20: the most a user may register
LINKS_PER_STEP = 20
HOOKS = "/api/v1/webhooks"


class SimulatedClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@dataclass
class Received:
    at: float
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A small HTTP/1.1 server: answers `status(now)` to every POST, keeps what came."""

    def __init__(self, clock: SimulatedClock, status: Callable[[float], int]) -> None:
        self.clock = clock
        self.status = status
        self.received: list[Received] = []
        self.answered: list[tuple[float, int]] = []
        self._server: asyncio.Server | None = None
        self.url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hook"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while head := await reader.readuntil(b"\r\n\r\n"):
                lines = head.decode("latin-1").split("\r\n")[1:]
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in lines if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                now = self.clock()
                status = self.status(now)
                self.received.append(Received(now, headers, body))
                self.answered.append((now, status))
                writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n".encode())
                await writer.drain()
        writer.close()


class Statements:
    """SQL statements run through `db`, counted at the driver."""

    def __init__(self, db: Database) -> None:
        self.count = 0

        def counted(*_: Any) -> None:
            self.count += 1

        event.listen(db.engine.sync_engine, "before_cursor_execute", counted)


@dataclass
class Step:
    endpoints: int
    statements_per_change: float
    deliveries: int
    verified: int


@dataclass
class Results:
    steps: list[Step] = field(default_factory=list)
    # Seconds from the first attempt, and the answer, of the delivery through an outage.
    attempts: list[tuple[float, int]] = field(default_factory=list)
    final_state: str = ""


@contextlib.asynccontextmanager
async def running(clock: SimulatedClock) -> AsyncIterator[tuple[Parts, httpx.AsyncClient]]:
    with tempfile.TemporaryDirectory(prefix="kurz-webhooks-") as tmp:
        url = f"sqlite:///{tmp}/kurz.db"
        migrating = Database.from_url(url)
        await upgrade(migrating)
        await migrating.dispose()
        settings = Settings(
            database_url=url,
            embedded_worker=False,
            analytics=False,
            ratelimit_api="off",
            ratelimit_redirect="off",
            ratelimit_auth_fail="off",
            grpc_port=0,
            webhook_allow_private=True,
            webhook_key="the bench's webhook key, 32 characters or more",
            webhook_timeout=5.0,
        )
        app = create_app(build(settings, clock=clock))
        async with app.router.lifespan_context(app):
            parts: Parts = app.state.kurz
            async with parts.db.write(READ_COMMITTED) as conn:
                created = await key_queries.create(
                    conn=conn,
                    key_in=ApiKeyCreate(name="bench", scopes=scopes_for()),
                    now=utcnow(clock),
                )
            auth = {"Authorization": f"Bearer {created.secret}"}
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", headers=auth
            ) as api:
                yield parts, api


async def register(api: httpx.AsyncClient, url: str, events: list[str]) -> str:
    made = await api.post(HOOKS, json={"url": url, "events": events})
    if made.status_code != 201:
        raise BenchError(f"registering a webhook answered {made.status_code}: {made.text}")
    secret: str = made.json()["secret"]
    return secret


async def make_link(api: httpx.AsyncClient, n: int) -> None:
    made = await api.post("/api/v1/links", json={"url": f"https://example.com/{n}"})
    if made.status_code != 201:
        raise BenchError(f"POST /api/v1/links answered {made.status_code}: {made.text}")


async def settle(worker: Worker) -> None:
    """Run what is due until nothing is."""
    for _ in range(1_000):
        if not await worker.run_once():
            return
    raise BenchError("jobs kept coming")


def verified(received: Received, secrets: list[str]) -> bool:
    """Whether one of the signatures sent is one a receiver computes with one of
    `secrets` (standardwebhooks' own signing, at the time the header says)."""
    at = datetime.fromtimestamp(int(received.headers["webhook-timestamp"]), UTC)
    sent = set(received.headers["webhook-signature"].split(" "))
    message = received.headers["webhook-id"]
    return any(Webhook(secret).sign(message, at, received.body) in sent for secret in secrets)


async def per_change(results: Results) -> None:
    clock = SimulatedClock(START)
    receiver = Receiver(clock, lambda _now: 204)
    await receiver.start()
    try:
        async with running(clock) as (parts, api):
            worker = Worker(parts.jobs, parts.registry, concurrency=32)
            statements = Statements(parts.db)
            secrets: list[str] = []
            made = 0
            for endpoints in ENDPOINT_STEPS:
                while len(secrets) < endpoints:
                    secrets.append(await register(api, receiver.url, ["link.created"]))
                await settle(worker)
                before, seen = statements.count, len(receiver.received)
                for _ in range(LINKS_PER_STEP):
                    await make_link(api, made)
                    made += 1
                spent = statements.count - before
                await settle(worker)
                got = receiver.received[seen:]
                results.steps.append(
                    Step(
                        endpoints,
                        spent / LINKS_PER_STEP,
                        len(got),
                        sum(1 for r in got if verified(r, secrets)),
                    )
                )
    finally:
        await receiver.stop()


async def through_outage(results: Results, outage: float) -> None:
    """One delivery to a receiver that answers 503 for `outage` seconds from its first
    attempt: each attempt's time on the simulated clock, until it is sent or dead."""
    clock = SimulatedClock(START)
    first: list[float] = []

    def status(now: float) -> int:
        if not first:
            first.append(now)
        return 503 if now - first[0] < outage else 204

    receiver = Receiver(clock, status)
    await receiver.start()
    try:
        async with running(clock) as (parts, api):
            worker = Worker(parts.jobs, parts.registry, concurrency=32)
            await register(api, receiver.url, ["link.created"])
            await make_link(api, 0)
            for _ in range(20):
                await settle(worker)
                async with parts.db.read() as conn:
                    row = (
                        await conn.execute(
                            sa.select(jobs.c.state, jobs.c.run_at).where(jobs.c.kind == DELIVER)
                        )
                    ).one()
                if row.state != "queued":
                    results.final_state = str(row.state)
                    break
                run_at = row.run_at if row.run_at.tzinfo else row.run_at.replace(tzinfo=UTC)
                clock.now = max(clock.now, run_at.timestamp())
            else:
                raise BenchError("the delivery neither went through nor died")
            results.attempts = [(at - first[0], answer) for at, answer in receiver.answered]
    finally:
        await receiver.stop()


def run(outage: float) -> Results:
    results = Results()
    asyncio.run(per_change(results))
    asyncio.run(through_outage(results, outage))
    return results
