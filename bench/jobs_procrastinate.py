"""procrastinate, the contender bench/jobs.py measures kurz.jobs against, on its own database.

Set up as its documentation has it (PsycopgConnector, its schema, a worker with
LISTEN/NOTIFY), with a connection pool as large as kurz's (10, growing to 20).
"""

from __future__ import annotations

from collections.abc import Callable

from procrastinate import App, PsycopgConnector

from bench.harness import BenchError


class Procrastinate:
    """A no-op task that reports when it starts, and the means to run it."""

    name = "procrastinate"
    backend = "postgresql"

    def __init__(self, url: str, started: Callable[[int], None]) -> None:
        self.database: str | None = url.rsplit("/", 1)[1]
        self.app = App(connector=PsycopgConnector(conninfo=url, min_size=10, max_size=20))

        @self.app.task(name="noop")
        async def noop(i: int) -> None:
            started(i)

        self.noop = noop

    async def open(self) -> None:
        await self.app.open_async()
        await self.app.schema_manager.apply_schema_async()

    async def reset(self) -> None:
        await self.app.connector.execute_query_async(
            "TRUNCATE procrastinate_jobs, procrastinate_events, procrastinate_periodic_defers"
        )

    async def enqueue(self, i: int) -> None:
        await self.noop.defer_async(i=i)

    async def settle(self) -> None:
        await self.app.connector.execute_query_async("ANALYZE procrastinate_jobs")

    async def work(self, *, concurrency: int, poll: float) -> None:
        """Run a worker until cancelled, then stop it the way it stops on SIGTERM."""
        await self.app.run_worker_async(
            concurrency=concurrency,
            fetch_job_polling_interval=poll,
            listen_notify=True,
            install_signal_handlers=False,
        )
        raise BenchError("the procrastinate worker stopped by itself")

    async def finished(self) -> int:
        row = await self.app.connector.execute_query_one_async(
            "SELECT count(*) AS n FROM procrastinate_jobs WHERE status = 'succeeded'"
        )
        return int(row["n"])

    def statements(self) -> int | None:
        return None

    async def close(self) -> None:
        await self.app.close_async()
