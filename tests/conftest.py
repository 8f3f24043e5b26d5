"""Fixtures: a fresh, migrated database per test, on SQLite and on PostgreSQL, and the
two deployments the app-level suites run over.

Each test gets its own database: a copy of a migrated SQLite template file, or a
PostgreSQL database cloned from a migrated template database (CREATE DATABASE ...
TEMPLATE, which copies files rather than replaying migrations). Nothing is shared
between tests, so their order never matters.

`deployment` runs a test once embedded (SQLite, everything in process) and once scaled
out (PostgreSQL, and Redis for the limiter, the invalidation bus, the click stream and
three L2 cache nodes). A suite takes it by overriding `settings` with
`deployment.settings()` (tests/integration/links, grpc, idempotency); the rest keep
`database_url`.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from redis import Redis as SyncRedis
from redis.exceptions import RedisError
from sqlalchemy.pool import NullPool

from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate, scopes_for
from kurz.clock import utcnow
from kurz.config import Settings
from kurz.db import READ_COMMITTED, Database, upgrade
from tests.support import FakeClock, PostgresServer, RedisServer, running

PG_ADMIN_DSN = os.environ.get("KURZ_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("KURZ_TEST_REDIS", "redis://127.0.0.1:6379/0")
# A MariaDB (or MySQL) server, for the sources that read another system's database.
MARIADB_URL = os.environ.get("KURZ_TEST_MARIADB", "mysql://root@127.0.0.1:3306/")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(autouse=True, scope="session")
def _no_grpc_by_default() -> Iterator[None]:
    """Apps the tests build serve no gRPC unless a test asks (KURZ_GRPC_PORT would
    otherwise bind 50051 in every app's lifespan, and the tests' apps would collide)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KURZ_GRPC_PORT", "0")
        yield


BASE_URL = "https://kurz.test"
_serial = itertools.count()


def pg_url(database: str) -> str:
    return PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + database


async def _migrate(url: str) -> None:
    db = Database.from_url(url)
    try:
        await upgrade(db)
    finally:
        await db.dispose()


async def _pg_admin(*statements: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def unavailable(reason: str) -> None:
    """A real service the test needs is missing: fatal in CI, a visible skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: services must be reachable)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_available() -> str:
    """The test Redis's URL, once it has answered a PING."""
    client = SyncRedis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except (OSError, RedisError) as exc:
        unavailable(f"Redis at {REDIS_URL} is not reachable: {exc}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(scope="session")
def mariadb_url() -> str:
    """The test MariaDB server's URL (naming no database: a test makes its own), once it
    has answered a query."""
    engine = sa.create_engine(
        sa.make_url(MARIADB_URL).set(drivername="mysql+pymysql"),
        poolclass=NullPool,
        connect_args={"connect_timeout": 5},
    )
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError as exc:
        unavailable(f"MariaDB at {MARIADB_URL} is not reachable: {exc.orig}")
    finally:
        engine.dispose()
    return MARIADB_URL


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A Redis of the test's own, for tests that stop it or need it to themselves."""
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed")
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the test's own, for tests that stop it."""
    try:
        server = PostgresServer()
    except FileNotFoundError as exc:
        unavailable(str(exc))
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def redis_nodes() -> Iterator[list[RedisServer]]:
    """Three Redis nodes of the test's own, for the cache ring (L2)."""
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed")
    servers = [RedisServer() for _ in range(3)]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "kurz.db"
    asyncio.run(_migrate(f"sqlite:///{path}"))
    return path


@dataclass(frozen=True)
class PgTemplate:
    """The migrated template database, or why PostgreSQL cannot be used."""

    name: str
    unreachable: str = ""


@pytest.fixture(scope="session")
def pg_template() -> Iterator[PgTemplate]:
    name = f"kurz_tpl_{os.getpid()}"
    try:
        asyncio.run(_pg_admin(f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        yield PgTemplate(name, f"PostgreSQL at {PG_ADMIN_DSN} is not reachable: {exc}")
        return
    asyncio.run(_migrate(pg_url(name)))
    yield PgTemplate(name)
    asyncio.run(_pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "kurz.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


def _pg_database(pg_template: PgTemplate, *, migrated: bool) -> Iterator[str]:
    if pg_template.unreachable:
        unavailable(pg_template.unreachable)
    name = f"kurz_t_{os.getpid()}_{next(_serial)}"
    template = f" TEMPLATE {pg_template.name}" if migrated else ""
    asyncio.run(_pg_admin(f"CREATE DATABASE {name}{template}"))
    yield pg_url(name)
    asyncio.run(_pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def postgres_url(pg_template: PgTemplate) -> Iterator[str]:
    """A migrated PostgreSQL database of the test's own."""
    yield from _pg_database(pg_template, migrated=True)


@pytest.fixture
def empty_postgres_url(pg_template: PgTemplate) -> Iterator[str]:
    """A PostgreSQL database with no schema at all."""
    yield from _pg_database(pg_template, migrated=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Every test that takes this runs once per backend."""
    url = request.getfixturevalue(f"{request.param.replace('postgresql', 'postgres')}_url")
    assert isinstance(url, str)
    return url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# Tests about something else must not meet a rate limit; tests/integration/ratelimit
# switches the policies on.
NO_LIMITS = {"ratelimit_api": "off", "ratelimit_redirect": "off", "ratelimit_auth_fail": "off"}


def app_settings(database_url: str, **more: Any) -> Settings:
    """The settings a test's app runs with, on `database_url`, with `more` on top."""
    # No worker and no click writer in the background: a test runs what it means to.
    return Settings.model_validate(
        {
            "database_url": database_url,
            "base_url": BASE_URL,
            "embedded_worker": False,
            "analytics": False,
            **NO_LIMITS,
            **more,
        }
    )


@dataclass(frozen=True)
class Deployment:
    """How the app under test is deployed: its database, and its Redis if scaled out."""

    name: str
    database_url: str
    # Scaled out: the limiter's, the bus's and the click stream's Redis (KURZ_REDIS_URL),
    # the L2 nodes (KURZ_CACHE_NODES), and a click journal folder of the test's own.
    redis_url: str = ""
    cache_nodes: tuple[str, ...] = ()
    click_journal_dir: str = ""

    def settings(self, **more: Any) -> Settings:
        scaled: dict[str, Any] = {"redis_url": self.redis_url, "cache_nodes": self.cache_nodes}
        if self.click_journal_dir:
            scaled["click_journal_dir"] = self.click_journal_dir
        return app_settings(self.database_url, **scaled, **more)


class ScaledRedis:
    """The scaled deployment's redis-servers, started once per test session (each
    pytest process, so concurrent runs never share them): one for KURZ_REDIS_URL, and
    three cache nodes. The shared Redis on 6379 is left to the tests that ask for it."""

    def __init__(self) -> None:
        self.main = RedisServer()
        self.nodes = [RedisServer() for _ in range(3)]
        self.servers = [self.main, *self.nodes]

    def start(self) -> None:
        for server in self.servers:
            server.start()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def flush(self) -> None:
        """Empty every server, as if just started.

        This isolates tests as well as fresh servers would: the servers are this
        process's alone, tests run one at a time, and the previous test's apps (their
        clients, bus subscriptions and stream readers) were shut down in its teardown,
        before this runs in the next test's setup. What stays is nothing a test can
        see: the limiter's Lua script cache, keyed by the script's own hash.
        """
        for server in self.servers:
            client = SyncRedis.from_url(server.url, socket_timeout=10)
            try:
                client.flushall(asynchronous=False)
            finally:
                client.close()


@pytest.fixture(scope="session")
def scaled_redis() -> Iterator[ScaledRedis]:
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed")
    servers = ScaledRedis()
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()


DEPLOYMENTS = ["embedded", "scaled"]


@pytest.fixture(params=DEPLOYMENTS)
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Deployment:
    """Every test that takes this runs embedded and scaled out (see the module's doc)."""
    if request.param == "embedded":
        return Deployment("embedded", request.getfixturevalue("sqlite_url"))
    database_url = request.getfixturevalue("postgres_url")
    redis: ScaledRedis = request.getfixturevalue("scaled_redis")
    redis.flush()
    journals = tmp_path / "clicks"
    journals.mkdir()
    return Deployment(
        "scaled",
        database_url,
        redis_url=redis.main.url,
        cache_nodes=tuple(node.url for node in redis.nodes),
        # The default would be one folder for the machine's every PostgreSQL-backed
        # kurz, whose dead processes' journals this test's app would replay.
        click_journal_dir=str(journals),
    )


@pytest.fixture
def settings(database_url: str) -> Settings:
    return app_settings(database_url)


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[FastAPI]:
    async with running(settings, clock) as app:
        yield app


@pytest.fixture
async def db(app: FastAPI) -> Database:
    database = app.state.kurz.db
    assert isinstance(database, Database)
    return database


KeyMaker = Callable[..., Awaitable[str]]


@pytest.fixture
def make_key(db: Database, clock: FakeClock) -> KeyMaker:
    """Create an API key in the test's database and return its secret."""

    async def make(name: str = "tester", *, admin: bool = False) -> str:
        async with db.write(READ_COMMITTED) as conn:
            created = await key_queries.create(
                conn=conn,
                key_in=ApiKeyCreate(name=name, scopes=scopes_for(admin=admin)),
                now=utcnow(clock),
            )
        return created.secret

    return make


@pytest.fixture
async def anon(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no credentials: for redirects and for checking 401s."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client


@pytest.fixture
async def api(app: FastAPI, make_key: KeyMaker) -> AsyncIterator[httpx.AsyncClient]:
    """A client authenticated with an ordinary (non-admin) key."""
    secret = await make_key("alice")
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers) as c:
        yield c


@pytest.fixture
def client_for(app: FastAPI) -> Callable[[str], httpx.AsyncClient]:
    """A client factory for a given secret; the caller closes it (async with)."""

    def make(secret: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=BASE_URL,
            headers={"Authorization": f"Bearer {secret}"},
        )

    return make
