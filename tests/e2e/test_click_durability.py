"""Clicks survive a SIGKILL of `kurz serve` (docs/decisions/0014-durable-clicks.md).

Visitors follow a link over keep-alive connections; `kurz serve` is killed with
SIGKILL while they do, then started again: on SQLite, on PostgreSQL, and scaled out
(the stream to a worker). Every redirect a visitor received must be
counted (none lost), and nothing beyond the requests that were sent (none twice): a
request sent but unanswered when the process died may count or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis.asyncio import Redis

from kurz.analytics.stream import GROUP, STREAM
from tests.e2e.load import BROWSER, _answer
from tests.e2e.support import Server, figure, kurz_env, run
from tests.e2e.test_click_counts import (
    PATIENCE,
    Workers,
    setup,
    started,
    stop_gracefully,
    totals,
)

VISITORS = 8
# Requests each visitor sends at most: the load is bounded, and cut short by the kill.
EACH = 2_000
# Redirects answered before the kill: the Drainer has written some batches by then,
# and holds others in memory.
KILL_AFTER = 3_000


@dataclass
class Visits:
    sent: int = 0
    answered: int = 0
    # Sent, and the connection ended before the answer came: at most one a visitor.
    unanswered: int = 0


async def visit(url: str, visits: Visits, *, at: dict[int, Callable[[], None]]) -> None:
    """VISITORS keep-alive connections, each sending EACH redirects in turn until the
    server dies; `at[n]()` is called once n answers have come."""
    host, port = url.removeprefix("http://").split("/", 1)[0].split(":")

    async def visitor() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        request = (
            f"GET /{url.rsplit('/', 1)[1]} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"User-Agent: {BROWSER}\r\n\r\n"
        ).encode("latin-1")
        try:
            for _ in range(EACH):
                writer.write(request)
                visits.sent += 1
                try:
                    status = await _answer(reader, "GET")
                except (ConnectionError, asyncio.IncompleteReadError):
                    visits.unanswered += 1
                    return
                assert status == 302
                visits.answered += 1
                if (action := at.get(visits.answered)) is not None:
                    action()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    await asyncio.gather(*(visitor() for _ in range(VISITORS)))


def journals(directory: Path) -> set[str]:
    return {path.name for path in directory.iterdir()} if directory.is_dir() else set()


async def consumed(url: str) -> bool:
    """Whether the consumers have read and acknowledged every entry of the stream."""
    redis = Redis.from_url(url)
    try:
        last = (await redis.xinfo_stream(STREAM))["last-generated-id"]
        [group] = [g for g in await redis.xinfo_groups(STREAM) if g["name"] == GROUP.encode()]
        return bool(group["last-delivered-id"] == last and group["pending"] == 0)
    finally:
        await redis.aclose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "postgresql+redis"])
def test_no_click_is_lost_or_counted_twice_when_serve_is_killed(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    workers = redis = None
    if backend == "sqlite":
        # The journal's default place: beside the database.
        env = kurz_env(KURZ_DATABASE_URL=f"sqlite:///{tmp_path}/kurz.db")
        journal_dir = tmp_path / "kurz.db-clicks"
    else:
        url = request.getfixturevalue("empty_postgres_url")
        journal_dir = tmp_path / "clicks"
        env = kurz_env(KURZ_DATABASE_URL=url, KURZ_CLICK_JOURNAL_DIR=str(journal_dir))
        if backend == "postgresql+redis":
            # Scaled out: the web process adds batches to the stream (and replays into
            # it), a worker records them.
            redis = request.getfixturevalue("redis_server")
            env |= {"KURZ_REDIS_URL": redis.url, "KURZ_EMBEDDED_WORKER": "false"}
            workers = Workers(tmp_path, env)
        migrated = run(["migrate"], env, tmp_path)
        assert migrated.returncode == 0, migrated.stderr
    env |= {"KURZ_RATELIMIT_REDIRECT": "off", "KURZ_RATELIMIT_API": "off"}
    since = datetime.now(UTC)
    if workers is not None:
        workers.start("worker")
        workers.consumer("worker")
    server = started(tmp_path, env)
    again: Server | None = None
    try:
        secret, code = setup(server, tmp_path)
        visits = Visits()
        actions = {KILL_AFTER: server.proc.kill}
        if redis is not None:
            # Scaled out, batches leave for the stream every 50 ms: a Redis that hangs
            # for the last 500 redirects makes sure some are still in the process when
            # it dies.
            actions[KILL_AFTER - 500] = redis.pause
        asyncio.run(visit(f"{server.url}/{code}", visits, at=actions))
        server.kill()
        if redis is not None:
            redis.resume()
        # Killed mid-load: visitors had requests left to send.
        assert KILL_AFTER <= visits.answered < VISITORS * EACH, visits
        assert visits.unanswered <= VISITORS, visits
        dead = journals(journal_dir)

        again = started(tmp_path, env)
        # The new process replays the dead one's journal, then removes it: from then
        # on, the counts are final (nothing else follows the link).
        deadline = time.monotonic() + PATIENCE
        while journals(journal_dir) & dead:
            assert time.monotonic() < deadline, (journals(journal_dir), again.proc.poll())
            time.sleep(0.1)
        # Scaled out, the worker records what the replay added to the stream.
        while redis is not None and not asyncio.run(consumed(redis.url)):
            assert time.monotonic() < deadline, workers.logs() if workers else ""
            time.sleep(0.1)
        counted = totals(again, secret, code, since)["clicks"]
        stop_gracefully(again)
        # Stopped cleanly, with every click written: its journal goes with it.
        assert journals(journal_dir) == set()
    finally:
        server.stop()
        if again is not None:
            again.stop()
        if workers is not None:
            workers.kill_all()
    # Whoever found the dead journal first replayed it: the new process, or the worker.
    logs = again.output() + (workers.logs() if workers is not None else "")
    replayed = sum(int(n) for n in re.findall(r"replayed (\d+) clicks", logs))
    figure(
        f"SIGKILL of serve ({backend})",
        "clicks",
        f"{visits.answered} redirects answered, {visits.unanswered} unanswered; "
        f"{counted} counted after the restart, {replayed} of them from the journal",
    )
    assert counted >= visits.answered, ("clicks lost", counted, visits)
    assert counted <= visits.answered + visits.unanswered, ("counted twice", counted, visits)
