"""The database handle: one async engine, with read and write transactions."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

from kurz.errors import Problem
from kurz.extras import need

_IMMEDIATE = "kurz_sqlite_immediate"


class Isolation(StrEnum):
    """The isolation level a transaction asks PostgreSQL for (docs/lab/isolation.md).

    kurz writes at READ COMMITTED: each of its check-then-write steps is one
    conditional statement on the row it writes (a visit taken, an ETag matched, a
    code claimed) or holds that row's lock, which that level makes exact, and FOR
    UPDATE SKIP LOCKED (job claims) needs it. A rule spanning rows is not exact at
    this level even in one statement (write skew, measured in the lab): it needs
    the rows locked or SERIALIZABLE. REPEATABLE READ gives a read one snapshot.

    SQLite ignores the level: its writers run one at a time (BEGIN IMMEDIATE) and
    each of its read transactions sees one snapshot, which is serializable.
    """

    READ_COMMITTED = "READ COMMITTED"
    REPEATABLE_READ = "REPEATABLE READ"
    SERIALIZABLE = "SERIALIZABLE"


class DatabaseUnavailable(Problem):
    """The database cannot be reached now: a 503 the client may retry, never a 500."""

    def __init__(
        self,
        slug: str = "database-unavailable",
        detail: str = "The database does not answer; nothing was changed. Try again shortly.",
    ) -> None:
        super().__init__(503, slug, "Service Unavailable", detail, headers={"Retry-After": "1"})


class DatabaseBusy(DatabaseUnavailable):
    """Every connection of this process's pool stayed taken for the pool's timeout: the
    database may answer well, but this process is at its limit (KURZ_DATABASE_POOL_SIZE)."""

    def __init__(self, connections: int | None) -> None:
        every = "All" if connections is None else f"All {connections}"
        super().__init__(
            "database-busy",
            f"{every} database connections are busy; nothing was changed. Try again shortly.",
        )


# What reaching the database raises when it is down, restarting, full or out of
# reach: a refused or timed-out connect comes from the driver as it is.
_UNREACHABLE = (OSError, sa_exc.TimeoutError)
# SQLite's, by primary result code (a syntax error is a bug, not an outage).
_SQLITE_UNAVAILABLE = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_CANTOPEN",
                       "SQLITE_FULL")  # fmt: skip
# How long a new PostgreSQL connection may take before the request fails fast.
CONNECT_TIMEOUT = 5.0
# PostgreSQL connections a process keeps open (and opens as many again under load).
POOL_SIZE = 10


def unreachable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached, rather than that a statement
    is wrong (which stays a bug: a 500)."""
    if isinstance(exc, sa_exc.DBAPIError):
        # A pooled connection the server closed (SQLAlchemy then recycles the whole
        # pool), or SQLite still locked after its busy timeout, or its file unusable.
        name = getattr(exc.orig, "sqlite_errorname", "")
        return exc.connection_invalidated or name.startswith(_SQLITE_UNAVAILABLE)
    if isinstance(exc, _UNREACHABLE):
        return True
    # asyncpg's own, if PostgreSQL is in use (else asyncpg is not loaded: kurz[postgres]).
    asyncpg = sys.modules.get("asyncpg")
    return asyncpg is not None and isinstance(
        exc,
        (
            asyncpg.CannotConnectNowError,
            asyncpg.TooManyConnectionsError,
            asyncpg.PostgresConnectionError,
        ),
    )


READ_COMMITTED = Isolation.READ_COMMITTED
REPEATABLE_READ = Isolation.REPEATABLE_READ
SERIALIZABLE = Isolation.SERIALIZABLE


def async_url(database_url: str) -> URL:
    """Map the URL a user writes (`sqlite:///...`, `postgresql://...`) to its async driver."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    if backend in {"postgresql", "postgres"}:
        return url.set(drivername="postgresql+asyncpg")
    raise ValueError(f"unsupported database URL scheme: {url.drivername}")


def create_engine(
    database_url: str,
    *,
    echo: bool = False,
    pool_size: int = POOL_SIZE,
    pool_timeout: float = CONNECT_TIMEOUT,
) -> AsyncEngine:
    """The engine; `pool_size` and `pool_timeout` apply to PostgreSQL's pool only."""
    url = async_url(database_url)
    if url.get_backend_name() != "sqlite":
        need("asyncpg", extra="postgres", because="KURZ_DATABASE_URL is PostgreSQL")
        return create_async_engine(
            url,
            echo=echo,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=pool_timeout,
            connect_args={"timeout": CONNECT_TIMEOUT},
        )

    # No directory is made here: a missing one is the CLI's to make or to refuse
    # (kurz.cli_settings.prepare_database), so that a typo is said, not followed.
    engine = create_async_engine(url, echo=echo)
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # kurz emits BEGIN itself (below) so that writers can ask for IMMEDIATE.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        # WAL lets the redirect path read while a writer commits; NORMAL is durable
        # in WAL mode except for the last transactions before a power loss.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred transaction that reads and then writes fails with SQLITE_BUSY
        # (no waiting) if another writer got there first; IMMEDIATE takes the write
        # lock up front and so waits on busy_timeout instead.
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def pool_limit(engine: AsyncEngine) -> int | None:
    """The most connections the engine's pool hands out at once; None if unbounded."""
    pool = engine.pool
    if not isinstance(pool, QueuePool):
        return None
    # SQLAlchemy has no public accessor for the overflow limit.
    return pool.size() + max(pool._max_overflow, 0)


@asynccontextmanager
async def _reachable(connections: int | None) -> AsyncIterator[None]:
    try:
        yield
    except Exception as exc:
        # SQLAlchemy's TimeoutError is the pool's alone: no connection came free in time.
        if isinstance(exc, sa_exc.TimeoutError):
            raise DatabaseBusy(connections) from exc
        if unreachable(exc):
            raise DatabaseUnavailable() from exc
        raise


class Database:
    """The engine plus the two kinds of transaction the service opens.

    Both name their isolation level: a write always (the choice is the writer's to
    make, and to read where it is made), a read when one snapshot matters.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.connections = pool_limit(engine)
        self.is_sqlite = engine.dialect.name == "sqlite"
        # SQLite's database file (None in memory): /readyz watches its disk.
        name = engine.url.database
        self.file = Path(name) if self.is_sqlite and name and name != ":memory:" else None
        self._readers: dict[Isolation, AsyncEngine]
        self._writers: dict[Isolation, AsyncEngine]
        if self.is_sqlite:
            writer = engine.execution_options(**{_IMMEDIATE: True})
            self._readers = dict.fromkeys(Isolation, engine)
            self._writers = dict.fromkeys(Isolation, writer)
        else:
            # Named on every transaction (asyncpg puts it in its BEGIN, no extra round
            # trip), so a server whose default_transaction_isolation differs changes nothing.
            levels = {level: engine.execution_options(isolation_level=level) for level in Isolation}
            self._readers = self._writers = levels

    @classmethod
    def from_url(
        cls,
        database_url: str,
        *,
        pool_size: int = POOL_SIZE,
        pool_timeout: float = CONNECT_TIMEOUT,
    ) -> Database:
        return cls(create_engine(database_url, pool_size=pool_size, pool_timeout=pool_timeout))

    @asynccontextmanager
    async def read(self, isolation: Isolation = READ_COMMITTED) -> AsyncIterator[AsyncConnection]:
        async with _reachable(self.connections), self._readers[isolation].begin() as conn:
            yield conn

    @asynccontextmanager
    async def write(self, isolation: Isolation) -> AsyncIterator[AsyncConnection]:
        """A write transaction; on SQLite it holds the write lock from its BEGIN.

        Raises DatabaseUnavailable when the database cannot be reached: the
        transaction is then rolled back, or was never begun.
        """
        async with _reachable(self.connections), self._writers[isolation].begin() as conn:
            yield conn

    @asynccontextmanager
    async def migration(self) -> AsyncIterator[AsyncConnection]:
        """The write transaction a schema migration runs in.

        On SQLite, foreign keys are checked at its end instead of on the way: changing
        a column there means copying the table, dropping it and renaming the copy, and
        with foreign keys on, dropping a table others refer to fails (api_keys) or
        cascades to their rows (links, to link_tags). This is SQLite's own procedure
        for such changes; the pragma is a no-op inside a transaction, so it is set
        around one.
        """
        if not self.is_sqlite:
            async with self.write(READ_COMMITTED) as conn:
                yield conn
            return
        writer = self._writers[READ_COMMITTED]
        async with _reachable(self.connections), writer.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            await raw.execute("PRAGMA foreign_keys=OFF")
            try:
                async with conn.begin():
                    yield conn
                    dangling = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).first()
                    if dangling is not None:
                        raise RuntimeError(f"a migration left a dangling reference: {dangling}")
            finally:
                await raw.execute("PRAGMA foreign_keys=ON")

    async def ping(self) -> None:
        """Raises DatabaseBusy when no connection comes free in time."""
        async with _reachable(self.connections), self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        await self.engine.dispose()


async def custom_plans(conn: AsyncConnection) -> None:
    """On PostgreSQL, plan the rest of this transaction's statements for their values.

    asyncpg prepares statements, and after five runs PostgreSQL may switch to a generic
    plan, made without the values: one plan for a rare and for a common one, where the
    best plans differ by far more than planning each statement costs (the stats' top
    values and totals; a search's words, ADR 0018).
    """
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
