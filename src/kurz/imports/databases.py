"""Reading another shortener's own database: its URL turned into a read-only engine,
the addresses the server may not be made to connect to, and its failures said plainly
and without the password (docs/imports/yourls.md, docs/imports/kutt.md).

The server is the one connecting, so a URL given through the API is a server-side
request like a webhook's: unless KURZ_IMPORT_ALLOW_PRIVATE allows it, its host must be
public (kurz.webhooks.addresses), the name resolved and every address checked, and the
connection made to the address checked; and no SQLite file of the server's own disk
may be named. `kurz import` opens sources with private addresses allowed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpcore
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from kurz.imports.sources import SourceError
from kurz.webhooks.addresses import Refused, check_host, checked, resolve

Family = Literal["mysql", "postgresql", "sqlite"]

# The schemes a URL may have, by the family of database they name. A driver named in
# the URL ("mysql+pymysql://") is replaced by the async one kurz ships.
FAMILIES: Mapping[str, Family] = {
    "mysql": "mysql",
    "mariadb": "mysql",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "sqlite": "sqlite",
}
_DRIVERS: Mapping[Family, str] = {
    "mysql": "mysql+aiomysql",
    "postgresql": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}
_PORTS: Mapping[Family, int] = {"mysql": 3306, "postgresql": 5432}
# The URL options a caller over the API may give: TLS. Others can point the driver
# somewhere else than the host checked (asyncpg's `host`, PyMySQL's `unix_socket`).
_PUBLIC_OPTIONS = frozenset({"ssl", "sslmode"})
CONNECT_TIMEOUT = 10
# A page is a few queries over one page of links; a database that has not answered
# them in this long is taken for one that will not.
PAGE_TIMEOUT = 600


def known_zone(name: str) -> str:
    """`name` if it is an IANA time zone (a settings validator)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/Paris)") from None
    return name


@dataclass(frozen=True, slots=True)
class Database:
    """Another system's database, as named by its URL, opened read-only."""

    family: Family
    url: URL
    # For messages: host:port/name, or the SQLite file's path; never the password.
    where: str
    allow_private: bool

    @classmethod
    def from_url(cls, raw: str, *, families: tuple[Family, ...], allow_private: bool) -> Database:
        """The database `raw` names, if it is of one of `families` and the server may
        connect to it; else a SourceError saying why."""
        try:
            url = make_url(raw.strip())
        except ArgumentError:
            raise SourceError("the database URL is not a URL (scheme://user@host/name)") from None
        family = FAMILIES.get(url.get_backend_name())
        if family is None or family not in families:
            schemes = ", ".join(f"{name}://" for name, f in FAMILIES.items() if f in families)
            raise SourceError(f"the database URL must begin with {schemes}")
        url = url.set(drivername=_DRIVERS[family])
        if family == "sqlite":
            return cls._sqlite(url, allow_private=allow_private)
        if not url.database:
            raise SourceError("the database URL names no database (…/name at its end)")
        host = url.host or "localhost"
        where = f"{host}:{url.port or _PORTS[family]}/{url.database}"
        try:
            check_host(host, allow_private=allow_private)
        except Refused as exc:
            raise SourceError(f"the database at {where} may not be reached: {exc}") from None
        options = sorted(set(url.query) - _PUBLIC_OPTIONS)
        if options and not allow_private:
            raise SourceError(
                f"the database URL's options {', '.join(options)} may be given only to "
                "`kurz import` (or with KURZ_IMPORT_ALLOW_PRIVATE)"
            )
        return cls(family, url.set(host=host), where, allow_private)

    @classmethod
    def _sqlite(cls, url: URL, *, allow_private: bool) -> Database:
        if not allow_private:
            raise SourceError(
                "a SQLite file is read from kurz's own disk: only `kurz import` may name "
                "one (or KURZ_IMPORT_ALLOW_PRIVATE allow it)"
            )
        if not url.database or url.database == ":memory:":
            raise SourceError("the database URL names no SQLite file (sqlite:///path)")
        path = Path(url.database).resolve()
        if not path.is_file():
            raise SourceError(f"there is no SQLite file at {path}")
        # Read-only, through SQLite's URI form: opening a mistyped path never makes a
        # file, and nothing is ever written to the other system's database.
        ro = URL.create(
            "sqlite+aiosqlite",
            database=f"file:{quote(str(path))}",
            query={"mode": "ro", "uri": "true"},
        )
        return cls("sqlite", ro, str(path), allow_private)

    async def engine(self) -> AsyncEngine:
        """An engine for it: no pool (a page a connection), read-only sessions, timeouts
        on connecting. With private addresses refused, the host is resolved here and
        the connection made to an address that was checked."""
        url = self.url
        if self.family != "sqlite" and not self.allow_private:
            assert url.host is not None
            try:
                addresses = await resolve(url.host, url.port or _PORTS[self.family])
                checked(addresses, url.host, allow_private=False)
            except (httpcore.ConnectError, Refused) as exc:
                raise SourceError(
                    f"the database at {self.where} may not be reached: {exc}"
                ) from None
            url = url.set(host=str(addresses[0]))
        args: dict[str, Any] = {}
        if self.family == "mysql":
            args = {
                "connect_timeout": CONNECT_TIMEOUT,
                "charset": "utf8mb4",
                "init_command": "SET SESSION TRANSACTION READ ONLY",
            }
        elif self.family == "postgresql":
            args = {
                "timeout": CONNECT_TIMEOUT,
                "server_settings": {
                    "default_transaction_read_only": "on",
                    "application_name": "kurz-import",
                },
            }
        else:
            args = {"timeout": CONNECT_TIMEOUT}
        return create_async_engine(url, poolclass=NullPool, connect_args=args)

    def failure(self, exc: BaseException, what: str) -> SourceError:
        """A SourceError for a failure of the database, for a person: where, and the
        database's own words (never the password, which some drivers could repeat)."""
        if isinstance(exc, TimeoutError):
            why = "it did not answer in time"
        elif isinstance(exc, DBAPIError) and exc.orig is not None:
            why = _words(exc.orig)
        else:
            why = _words(exc)
        password = self.url.password
        if password:
            why = why.replace(str(password), "***")
        return SourceError(f"cannot read the {what} database at {self.where}: {why}")


def _words(exc: BaseException) -> str:
    # pymysql's errors are (code, message) pairs; the rest say it in str().
    args = exc.args
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        return f"{args[1]} ({args[0]})"
    return str(exc).strip() or type(exc).__name__


@asynccontextmanager
async def connected(
    engine: AsyncEngine, database: Database, what: str
) -> AsyncIterator[AsyncConnection]:
    """A connection in a read-only transaction, for one page; any failure of the
    database (refused, a wrong password, a query it cannot run) a SourceError."""
    try:
        async with asyncio.timeout(PAGE_TIMEOUT), engine.connect() as conn:
            yield conn
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        raise database.failure(exc, what) from exc


async def missing(conn: AsyncConnection, tables: tuple[str, ...]) -> list[str]:
    """Which of `tables` the database lacks."""

    def lacking(sync: sa.Connection) -> list[str]:
        inspector = sa.inspect(sync)
        return [name for name in tables if not inspector.has_table(name)]

    return await conn.run_sync(lacking)
