"""The `kurz` command: serve, migrate, manage API keys, shorten from a shell, export
(and import, from kurz.cli_imports; links, from kurz.cli_links)."""

from __future__ import annotations

import asyncio
import errno
import gc
import json
import logging
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Column, Table

from kurz import __version__
from kurz.auth.models import SCOPES
from kurz.cli_backup import backup
from kurz.cli_imports import imports
from kurz.cli_links import links
from kurz.cli_output import JSON_HELP, console, lines
from kurz.cli_settings import (
    database_failure,
    err,
    fail,
    prepare_database,
    read_settings,
    require_database,
    usage,
)
from kurz.jobs.models import JobState

# What a command uses is imported when it runs (`kurz --help` stays under 0.3 s of CPU,
# docs/benchmarks.md "Start-up"): SQLAlchemy, FastAPI, Alembic and the services load
# only for the commands that use them. tests/unit/test_cli_imports.py holds it.
if TYPE_CHECKING:
    from kurz.accounts.firstrun import FirstRun
    from kurz.accounts.models import UserRead
    from kurz.accounts.service import Users
    from kurz.auth.models import ApiKeyCreated, ApiKeyRead, Scope
    from kurz.bootstrap import Parts
    from kurz.config import Settings
    from kurz.db import Database
    from kurz.exports.service import Counts
    from kurz.jobs import Job
    from kurz.links.domain_models import DomainList, DomainRead
    from kurz.links.domain_service import DomainAdmin
    from kurz.tracing.otel import Tracing

T = TypeVar("T")

app = typer.Typer(
    help="kurz: a self-hosted URL shortener.", no_args_is_help=True, add_completion=False
)
keys = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(keys, name="keys")
jobs = typer.Typer(help="Inspect background jobs, and retry dead ones.", no_args_is_help=True)
app.add_typer(jobs, name="jobs")
people = typer.Typer(help="Manage the people who sign in.", no_args_is_help=True)
app.add_typer(people, name="users")
hosts = typer.Typer(help="Manage the domains kurz answers for.", no_args_is_help=True)
app.add_typer(hosts, name="domains")
app.add_typer(imports, name="import")
app.add_typer(links, name="links")
# serve and worker log (kurz.logs); the other commands print for a person.
log = logging.getLogger(__name__)


def _version(value: bool) -> None:
    if value:
        print(f"kurz {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="Print kurz's version."
        ),
    ] = False,
) -> None:
    """kurz: a self-hosted URL shortener."""


def _fail(message: str) -> typer.Exit:
    return fail(message)


def _settings() -> Settings:
    return read_settings()


def _with_db(
    settings: Settings, work: Callable[[Database], Awaitable[T]], *, create: bool = False
) -> T:
    """Run `work` against a database whose schema is ready (see ensure_schema); a
    SQLite database that does not exist yet is made only if `create`."""
    from sqlalchemy.exc import DBAPIError

    from kurz.db import Database, DatabaseUnavailable, SchemaNotReady, ensure_schema
    from kurz.errors import Problem
    from kurz.extras import MissingExtra

    if create:
        prepare_database(settings)
    else:
        require_database(settings)

    async def run() -> T:
        db = Database.from_url(settings.database_url)
        try:
            await ensure_schema(db)
            return await work(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except (SchemaNotReady, MissingExtra) as exc:
        raise _fail(str(exc)) from None
    except (OSError, DatabaseUnavailable, DBAPIError) as exc:
        raise database_failure(exc, settings) from None
    except Problem as problem:
        # What the API would answer with a status, said to the operator.
        raise _fail(problem.detail) from None


@app.command()
def serve() -> None:
    """Serve the API and redirects (KURZ_HOST, KURZ_PORT, KURZ_DATABASE_URL, ...)."""
    # Starting makes many objects that all live on (modules, tables, routes): the cyclic
    # collector would walk them again and again for nothing. It resumes before serving,
    # with them frozen (as the app's lifespan freezes what it makes, ADR 0010).
    gc.disable()
    import uvicorn

    from kurz.app import create_app
    from kurz.headlimit import HeadLimits, protocol_class
    from kurz.logs import configure_logging

    settings = _settings()
    configure_logging(settings)
    parts = _built(settings)
    settings = parts.settings  # As installed: gRPC off without kurz[grpc] (kurz.bootstrap).
    tracing = _traced(parts)

    async def ready(_db: Database) -> None:
        return None

    # Fails here, with the message, rather than as a traceback from the server's lifespan.
    _with_db(settings, ready, create=True)
    _first_run(settings)
    # Checked before "serving on" is said; the server's own bind is the final word.
    taken = _cannot_listen(settings.host, settings.port)
    if taken:
        raise _fail(f"cannot serve HTTP on {settings.host}:{settings.port}: {taken} "
                    "(set KURZ_PORT to another port)")  # fmt: skip
    taken = _cannot_listen(settings.host, settings.grpc_port) if settings.grpc_port else None
    if taken:
        where = f"{settings.host}:{settings.grpc_port}"
        raise _fail(f"cannot serve gRPC on {where}: {taken} "
                    "(set KURZ_GRPC_PORT to another port, or 0 to turn gRPC off)")  # fmt: skip
    where = f"http://{settings.host}:{settings.port}"
    log.info("kurz serving on %s (short URLs on %s)", where, settings.base_url)
    if settings.grpc_port:
        log.info("gRPC (kurz.v1.LinkService) on %s:%s", settings.host, settings.grpc_port)
    # Frozen, not collected: startup leaves about 2,000 unreachable objects among
    # 260,000, and finding them would cost a full collection (0.1 s of CPU, about a
    # tenth of the start; docs/benchmarks.md, "Start-up"). They stay, a few hundred KB.
    gc.freeze()
    gc.enable()
    web = create_app(parts)
    try:
        uvicorn.run(
            web if tracing is None else tracing.app(web),
            host=settings.host,
            port=settings.port,
            # uvloop where it is installed (pyproject.toml: CPython off Windows), else asyncio's.
            loop="auto",
            # uvicorn's httptools protocol, with the request head bounded (ADR 0013).
            http=protocol_class(HeadLimits.of(settings)),
            # uvicorn's loggers go through kurz's handler, configured above: None keeps
            # uvicorn from installing its own (access_log and log_level still apply).
            log_config=None,
            access_log=settings.access_log,
            log_level=settings.log_level,
            server_header=False,
            proxy_headers=False,
        )
    finally:
        if tracing is not None:
            # Done at the lifespan's end already (kurz.tracing); here for a server that
            # stopped before its lifespan ran (a port taken at bind).
            tracing.shutdown()


def _built(settings: Settings) -> Parts:
    """kurz's parts (kurz.bootstrap.build), or the reason they cannot be built."""
    from kurz.bootstrap import build
    from kurz.extras import MissingExtra
    from kurz.geo import GeoDataError

    try:
        return build(settings)
    except (GeoDataError, MissingExtra) as exc:
        raise _fail(str(exc)) from None


def _traced(parts: Parts) -> Tracing | None:
    """Traces of `parts` (kurz.tracing) when OTEL_EXPORTER_OTLP_ENDPOINT asks for them,
    or the reason they cannot be made."""
    from kurz import tracing
    from kurz.extras import MissingExtra

    try:
        traced = tracing.start()
        if traced is not None:
            traced.instrument(parts)
    except MissingExtra as exc:
        raise _fail(str(exc)) from None
    if traced is not None:
        log.info("traces on: OTLP/HTTP to %s", tracing.destination())
    return traced


def _users(settings: Settings, db: Database) -> Users:
    from kurz.accounts import Passwords
    from kurz.accounts.service import Users
    from kurz.clock import system_clock

    return Users(db=db, clock=system_clock, passwords=Passwords(), base_url=settings.base_url)


def _first_run(settings: Settings) -> None:
    """The initial admin from KURZ_INITIAL_ADMIN_*, or, while no admin can sign in, a
    setup link on stderr (docs/accounts.md, First run)."""
    from kurz.accounts.firstrun import SetupError, first_run

    async def work(db: Database) -> FirstRun:
        return await first_run(
            _users(settings, db),
            email=settings.initial_admin_email,
            password_file=settings.initial_admin_password_file,
        )

    try:
        done = _with_db(settings, work)
    except SetupError as exc:
        raise _fail(str(exc)) from None
    if done.created:
        log.info("made the initial admin %s (KURZ_INITIAL_ADMIN_EMAIL)", done.created)
    if done.kept:
        log.info("KURZ_INITIAL_ADMIN_EMAIL: %s has an account, left as it is", done.kept)
    if done.setup_url:
        # A log record like every other line on stderr (text or JSON, for log shippers),
        # a warning so that it stands out, and one line so that it is kept whole.
        log.warning(
            "No admin can sign in yet. Open %s within an hour to create the first admin.",
            done.setup_url,
        )


def _cannot_listen(host: str, port: int) -> str | None:
    """Why host:port cannot be listened on now (the port is in use, or the address
    is not this machine's), or None."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As servers bind: a port whose old connections linger in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "the port is in use"
            return (exc.strerror or str(exc)).lower()
    return None


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Jobs run at once (KURZ_WORKER_CONCURRENCY).")
    ] = None,
    metrics_port: Annotated[
        int,
        typer.Option(min=0, max=65535, help="Serve this worker's /metrics on this port (0: none)."),
    ] = 0,
    metrics_host: Annotated[
        str, typer.Option(help="The address --metrics-port listens on.")
    ] = "127.0.0.1",
) -> None:
    """Run background jobs until SIGTERM or Ctrl-C (then finish or release running ones)."""
    from sqlalchemy.exc import DBAPIError

    from kurz.db import DatabaseUnavailable, SchemaNotReady
    from kurz.jobs import Worker
    from kurz.logs import configure_logging

    # A worker serves neither HTTP nor gRPC: it only runs jobs (and consumes clicks).
    settings = _settings().model_copy(update={"embedded_worker": False, "grpc_port": 0})
    configure_logging(settings)
    from kurz.bootstrap import running

    built = _built(settings)
    require_database(settings)
    tracing = _traced(built)

    async def run() -> None:
        async with running(built) as parts:
            runner = Worker(
                parts.jobs,
                parts.registry,
                concurrency=concurrency or settings.worker_concurrency,
                lease=settings.worker_lease,
            )
            analytics = parts.analytics
            # Scaled out, workers also record the clicks web processes put in the
            # stream; stopping the parts records and acknowledges what they hold.
            if analytics is not None:
                analytics.start_consumer(name=runner.name)
            scrapes = None
            if metrics_port:
                from kurz import metrics

                scrape = metrics.Scrape(metrics.KurzCollector(parts, worker=runner))
                try:
                    scrapes = await metrics.serve(
                        scrape.render, host=metrics_host, port=metrics_port
                    )
                except OSError as exc:
                    raise _fail(
                        f"cannot serve metrics on {metrics_host}:{metrics_port}: {exc.strerror}"
                    ) from None
                log.info("worker metrics on http://%s:%d/metrics", metrics_host, metrics_port)
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, runner.stop)
            log.info("worker %s running", runner.name)
            try:
                await runner.run()
            finally:
                if scrapes is not None:
                    scrapes.close()
                    await scrapes.wait_closed()
            log.info("worker %s stopped", runner.name)

    try:
        asyncio.run(run())
    except SchemaNotReady as exc:
        raise _fail(str(exc)) from None
    except (OSError, DatabaseUnavailable, DBAPIError) as exc:
        raise database_failure(exc, settings) from None
    finally:
        if tracing is not None:
            tracing.shutdown()


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (required before serving on PostgreSQL);
    makes a SQLite database that does not exist yet."""
    from sqlalchemy.exc import DBAPIError

    from kurz.db import Database, DatabaseUnavailable, SchemaNotReady, upgrade
    from kurz.db.migrate import applied_revisions, known_revisions, pending_revisions
    from kurz.extras import MissingExtra

    settings = _settings()
    prepare_database(settings)

    async def run() -> tuple[list[str], set[str]]:
        db = Database.from_url(settings.database_url)
        try:
            before = await applied_revisions(db)
            if before - known_revisions():
                raise SchemaNotReady(
                    "the database was migrated by a newer kurz than this one; upgrade kurz"
                )
            await upgrade(db)
            return pending_revisions(before), before
        finally:
            await db.dispose()

    try:
        applied, before = asyncio.run(run())
    except (SchemaNotReady, MissingExtra) as exc:
        raise _fail(str(exc)) from None
    except (OSError, DatabaseUnavailable, DBAPIError) as exc:
        raise database_failure(exc, settings) from None
    if not applied:
        err.print(f"already at {', '.join(sorted(before))}", highlight=False)
    elif len(applied) == 1:
        err.print(f"applied {applied[0]}", highlight=False)
    else:
        err.print(f"applied {applied[0]} … {applied[-1]}", highlight=False)


_UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 7 * 86_400}


def _expiry(expires: str | None, expires_in: str | None) -> datetime | None:
    """When a key made now stops working: --expires (ISO 8601; UTC without an offset)
    or --expires-in (30d, 12h, 90m, 2w), not both."""
    from kurz.clock import system_clock, utcnow

    if expires is not None and expires_in is not None:
        raise _fail("give --expires or --expires-in, not both")
    if expires is not None:
        try:
            moment = datetime.fromisoformat(expires)
        except ValueError:
            raise _fail(f"--expires: {expires!r} is not an ISO 8601 date-time") from None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    if expires_in is not None:
        amount, unit = expires_in[:-1], expires_in[-1:]
        if not amount.isdigit() or unit not in _UNITS or len(amount) > 6:
            raise _fail(f"--expires-in: {expires_in!r} is not a duration like 30d, 12h or 90m")
        return utcnow(system_clock) + timedelta(seconds=int(amount) * _UNITS[unit])
    return None


def _scopes(named: list[str], *, admin: bool, proxy: bool) -> list[Scope]:
    """The scopes asked for: --scope's, plus an admin's for --admin and `proxy` for
    --proxy; a new key's defaults (not `webhooks`) when neither --scope nor --admin
    says otherwise."""
    from kurz.auth.models import DEFAULT_KEY_SCOPES, in_order, scopes_for

    unknown = [name for name in named if name not in SCOPES]
    if unknown:
        raise _fail(f"unknown scope {unknown[0]!r}; the scopes are {', '.join(SCOPES)}")
    chosen: set[Scope] = {name for name in SCOPES if name in named}
    if admin:
        chosen |= set(scopes_for(admin=True))
    if proxy:
        chosen.add("proxy")
    if not named and not admin:
        chosen |= DEFAULT_KEY_SCOPES
    return in_order(chosen)


@keys.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
    user: Annotated[
        str | None,
        typer.Option(
            metavar="EMAIL",
            help="The user the key acts for; its scopes must be within the user's role. "
            "Without it, the key gets a user of its own, who cannot sign in.",
        ),
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            metavar="SCOPE",
            help=f"What the key may do; repeat for more ({', '.join(SCOPES)}). "
            "Default: links:read links:write stats:read.",
        ),
    ] = None,
    admin: Annotated[
        bool, typer.Option(help="Shorthand for an admin's scopes: every one but proxy.")
    ] = False,
    proxy: Annotated[
        bool,
        typer.Option(
            help="Add the proxy scope, for an edge proxy: its gRPC ResolveLink calls may "
            "name the visitor (client_ip, user_agent, referer), who is then limited and "
            "counted instead of the proxy. Trust it as you trust the proxy."
        ),
    ] = False,
    expires: Annotated[
        str | None,
        typer.Option(
            metavar="ISO8601", help="When the key stops working, e.g. 2027-01-01T00:00:00Z."
        ),
    ] = None,
    expires_in: Annotated[
        str | None,
        typer.Option(metavar="DURATION", help="How long the key works: 30d, 12h, 90m, 2w."),
    ] = None,
) -> None:
    """Create an API key and print its secret (shown this once only)."""
    from pydantic import ValidationError

    from kurz.auth.keys import Keys
    from kurz.auth.models import ApiKeyCreate
    from kurz.clock import system_clock

    scopes = _scopes(scope or [], admin=admin, proxy=proxy)
    expires_at = _expiry(expires, expires_in)
    try:
        key_in = ApiKeyCreate(name=name, scopes=scopes, expires_at=expires_at)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise _fail(f"invalid {error['loc'][0]}: {error['msg']}") from None
    settings = _settings()

    async def work(db: Database) -> ApiKeyCreated:
        made = Keys(db=db, clock=system_clock)
        owner = None if user is None else await made.user_named(user)
        return await made.create(key_in=key_in.model_copy(update={"user": owner}), by=None)

    created = _with_db(settings, work)
    err.print(
        f"key {created.id} for {user or 'a user of its own'}: {' '.join(created.scopes)}",
        highlight=False,
        soft_wrap=True,
    )
    # The secret alone on stdout, so that `KEY=$(kurz keys create ...)` works.
    typer.echo(created.secret)


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else ""


@keys.command("list")
def keys_list(
    user: Annotated[
        str | None, typer.Option(metavar="EMAIL", help="Only this user's keys.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List API keys (secrets are never shown again)."""
    from kurz.auth.keys import Keys
    from kurz.clock import system_clock

    settings = _settings()

    async def work(db: Database) -> tuple[list[ApiKeyRead], dict[int, str]]:
        made = Keys(db=db, clock=system_clock)
        owner = None if user is None else await made.user_named(user)
        found = await made.list_(by=None, user=owner)
        return found, await made.emails({key.user for key in found})

    found, emails = _with_db(settings, work)
    if as_json:
        lines(found)
        return
    table = Table(
        "id", "name", "user", "prefix", "scopes", "created", "expires", "last used", "revoked"
    )
    for key in found:
        table.add_row(
            str(key.id),
            key.name,
            emails.get(key.user, str(key.user)),
            key.prefix + "…",
            " ".join(key.scopes),
            _when(key.created_at),
            _when(key.expires_at),
            _when(key.last_used_at),
            _when(key.revoked_at),
        )
    console().print(table)


@keys.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Revoke an API key; requests with it get 401 from then on."""
    from kurz.auth.keys import Keys
    from kurz.clock import system_clock

    settings = _settings()

    async def work(db: Database) -> None:
        await Keys(db=db, clock=system_clock).revoke(key_id=key_id, by=None)

    _with_db(settings, work)
    err.print(f"revoked key {key_id}", highlight=False)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        raise _fail("no terminal to ask for the password on: send it with --password-stdin")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@people.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="Their email address, which they sign in with.")],
    admin: Annotated[bool, typer.Option(help="May manage users, keys and every link.")] = False,
    name: Annotated[str, typer.Option(help="How they are shown to others.")] = "",
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from the first line of stdin.")
    ] = False,
) -> None:
    """Create a user with a password (asked twice on a terminal)."""
    from kurz.errors import Problem

    settings = _settings()
    password = _read_password(password_stdin)

    async def work(db: Database) -> UserRead:
        return await _users(settings, db).create(
            email=email, password=password, role="admin" if admin else "member", display_name=name
        )

    try:
        user = _with_db(settings, work)
    except Problem as problem:
        raise _fail(problem.detail) from None
    err.print(f"created {user.role} {user.email} (id {user.id})", highlight=False, markup=False)


@people.command("list")
def users_list(
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List users, oldest first."""
    settings = _settings()

    async def work(db: Database) -> list[UserRead]:
        users = _users(settings, db)
        found: list[UserRead] = []
        cursor = None
        while True:
            page = await users.list_(limit=100, cursor=cursor)
            found += page.items
            cursor = page.next_cursor
            if cursor is None:
                return found

    found = _with_db(settings, work)
    if as_json:
        lines(found)
        return
    table = Table("id", "name", "role", "password", "disabled", "created", "last seen")
    # Whole, however narrow the terminal (or a pipe's 80 columns): it is what names them.
    longest = max((len(user.email) for user in found), default=5)
    table.columns.insert(1, Column("email", no_wrap=True, min_width=min(longest, 80)))
    for user in found:
        table.add_row(
            str(user.id),
            user.email,
            user.display_name,
            user.role,
            "yes" if user.has_password else "no",
            user.disabled_at.isoformat(timespec="seconds") if user.disabled_at else "",
            user.created_at.isoformat(timespec="seconds"),
            user.last_seen_at.isoformat(timespec="seconds") if user.last_seen_at else "",
        )
    console().print(table)


@people.command("reset-link")
def users_reset_link(
    email: Annotated[str, typer.Option(help="The email address of the user.")],
) -> None:
    """Print a one-time link (7 days) for the user to choose a new password with: for
    an admin locked out, from a shell on the server."""
    from kurz.accounts.service import Actor
    from kurz.errors import Problem

    settings = _settings()

    async def work(db: Database) -> str:
        users = _users(settings, db)
        user = await users.by_email(email=email)
        return (await users.reset_link(user_id=user.id, actor=Actor())).reset_url

    try:
        url = _with_db(settings, work)
    except Problem as problem:
        raise _fail(problem.detail) from None
    typer.echo(url)


@jobs.command("list")
def jobs_list(
    state: Annotated[
        JobState | None, typer.Option(help="Only jobs in this state, e.g. dead.")
    ] = None,
    queue: Annotated[str | None, typer.Option(help="Only jobs of this queue.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List jobs, newest first, with their last error."""
    from kurz.clock import system_clock
    from kurz.jobs import JobStore

    settings = _settings()

    async def work(db: Database) -> list[Job]:
        return await JobStore(db, system_clock).list(state=state, queue=queue, limit=limit)

    found = _with_db(settings, work)
    if as_json:
        lines(found)
        return
    table = Table("id", "kind", "queue", "state", "attempts", "run at", "last error")
    for job in found:
        table.add_row(
            str(job.id),
            job.kind,
            job.queue,
            job.state.value,
            f"{job.attempts}/{job.max_attempts}",
            job.run_at.isoformat(timespec="seconds"),
            _last_line(job.last_error),
        )
    console().print(table)


def _last_line(text: str | None) -> str:
    """A traceback's last line says what went wrong."""
    lines = (text or "").strip().splitlines()
    return lines[-1] if lines else ""


@jobs.command("retry")
def jobs_retry(job_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Queue a dead job again, with fresh attempts."""
    from kurz.clock import system_clock
    from kurz.jobs import JobStore

    settings = _settings()

    async def work(db: Database) -> tuple[Job | None, bool]:
        store = JobStore(db, system_clock)
        found = await store.get(job_id)
        return found, found is not None and await store.retry(job_id)

    found, retried = _with_db(settings, work)
    if found is None:
        raise usage(f"no job {job_id}")
    if not retried and found.state is not JobState.DEAD:
        raise usage(f"job {job_id} is {found.state.value}, not dead: only a dead job is retried")
    if not retried:
        raise usage(f"job {job_id} is not queued again: another job with its unique key is pending")
    err.print(f"job {job_id} is queued again", highlight=False)


def _domains(settings: Settings, db: Database) -> DomainAdmin:
    from kurz.clock import system_clock
    from kurz.links.domain_service import DomainAdmin
    from kurz.links.domains import Domains, Redirects

    registry = Domains(
        db=db, base_url=settings.base_url, instance=Redirects(), refuse_unknown=False
    )
    return DomainAdmin(db=db, clock=system_clock, registry=registry)


_REDIRECT_HELP = "Where {} goes instead of kurz's page (an absolute URL)."


@hosts.command("add")
def domains_add(
    host: Annotated[str, typer.Argument(help="The host, in any spelling (IDN too).")],
    http: Annotated[bool, typer.Option(help="Its short URLs are http://, not https://.")] = False,
    root_redirect: Annotated[str | None, typer.Option(help=_REDIRECT_HELP.format("GET /"))] = None,
    not_found_redirect: Annotated[
        str | None, typer.Option(help=_REDIRECT_HELP.format("an unknown code"))
    ] = None,
) -> None:
    """Add a domain; processes serving already pick it up within KURZ_REDIRECT_CACHE_TTL."""
    from pydantic import ValidationError

    from kurz.links.domain_models import DomainCreate

    settings = _settings()
    try:
        domain_in = DomainCreate(
            host=host,
            https=not http,
            root_redirect=root_redirect,
            not_found_redirect=not_found_redirect,
        )
    except ValidationError as exc:
        raise _fail("; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())) from None

    async def work(db: Database) -> DomainRead:
        return await _domains(settings, db).create(domain_in)

    made = _with_db(settings, work)
    err.print(f"added {made.host} ({'https' if made.https else 'http'})", highlight=False)


@hosts.command("list")
def domains_list(
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help=f"{JSON_HELP} The default domain (KURZ_BASE_URL's host) has no row: not listed.",
        ),
    ] = False,
) -> None:
    """List the domains; the default one (KURZ_BASE_URL's host) first."""
    settings = _settings()

    async def work(db: Database) -> DomainList:
        return await _domains(settings, db).list_()

    found = _with_db(settings, work)
    if as_json:
        lines(found.items)
        return
    table = Table("host", "scheme", "root", "not found", "expired", "used up")
    table.add_row(found.default + " (default)", settings.base_url.split(":", 1)[0], "", "", "", "")
    for domain in found.items:
        table.add_row(
            domain.host,
            "https" if domain.https else "http",
            domain.root_redirect or "",
            domain.not_found_redirect or "",
            domain.expired_redirect or "",
            domain.used_up_redirect or "",
        )
    console().print(table)


@hosts.command("remove")
def domains_remove(host: Annotated[str, typer.Argument(help="The domain's host.")]) -> None:
    """Remove a domain that has no live links."""
    settings = _settings()

    async def work(db: Database) -> None:
        await _domains(settings, db).delete(host)

    _with_db(settings, work)
    err.print(f"removed {host}", highlight=False)


@app.command()
def shorten(
    url: str,
    alias: Annotated[
        str | None, typer.Option(help="A custom code instead of a random one.")
    ] = None,
    domain: Annotated[
        str | None, typer.Option(help="The domain it answers on (default: the default one).")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option(help="A tag; repeat for more.")] = None,
    valid_from: Annotated[
        str | None, typer.Option(help="When it starts to redirect (RFC 3339).")
    ] = None,
    expires_at: Annotated[
        str | None, typer.Option(help="When it stops redirecting (RFC 3339).")
    ] = None,
    max_visits: Annotated[
        int | None, typer.Option(help="How many visits it redirects before it is used up.")
    ] = None,
    password: Annotated[
        bool,
        typer.Option(
            "--password",
            help="Ask visitors for a password, read from standard input (asked for twice, "
            "unseen, on a terminal).",
        ),
    ] = False,
    variant: Annotated[
        list[str] | None,
        typer.Option(help="An A/B variant as URL=WEIGHT; repeat, 2 to 10 (docs/variants.md)."),
    ] = None,
    sticky: Annotated[
        bool, typer.Option(help="One variant per visitor all day, instead of per visit.")
    ] = False,
    rules: Annotated[
        Path | None,
        typer.Option(help="A JSON file holding the targeting rules (docs/rules.md)."),
    ] = None,
    fallback_expired: Annotated[
        str | None, typer.Option(help="Where a visit goes once it has expired.")
    ] = None,
    fallback_used_up: Annotated[
        str | None, typer.Option(help="Where a visit goes once it is used up.")
    ] = None,
    fallback_not_yet: Annotated[
        str | None, typer.Option(help="Where a visit goes before --valid-from.")
    ] = None,
    og_title: Annotated[
        str | None, typer.Option(help="The title link previews show (Slack, ...).")
    ] = None,
    og_description: Annotated[
        str | None, typer.Option(help="The description link previews show.")
    ] = None,
    og_image: Annotated[str | None, typer.Option(help="The image link previews show.")] = None,
) -> None:
    """Shorten URL through a running kurz (KURZ_API_KEY) and print the short URL.

    The server's own settings say where it is (KURZ_BASE_URL, else KURZ_HOST and
    KURZ_PORT), unless KURZ_URL names it.

    Every option is a field of POST /api/v1/links; kurz checks them all and names any it
    refuses.
    """
    import httpx

    server = _server()
    key = os.environ.get("KURZ_API_KEY")
    if not key:
        raise _fail("set KURZ_API_KEY to a key from `kurz keys create`")
    body: dict[str, Any] = {"url": url}
    named = {
        "alias": alias,
        "domain": domain,
        "valid_from": valid_from,
        "expires_at": expires_at,
        "max_visits": max_visits,
        "og_title": og_title,
        "og_description": og_description,
        "og_image": og_image,
    }
    body.update({name: value for name, value in named.items() if value is not None})
    if tag:
        body["tags"] = tag
    fallbacks = {
        "not_yet": fallback_not_yet,
        "expired": fallback_expired,
        "used_up": fallback_used_up,
    }
    if any(fallbacks.values()):
        body["fallbacks"] = {name: value for name, value in fallbacks.items() if value}
    if variant:
        body["variants"] = [_variant(given) for given in variant]
        if sticky:
            body["variant_choice"] = "sticky"
    elif sticky:
        raise _fail("--sticky chooses among variants: give them with --variant URL=WEIGHT")
    if rules is not None:
        try:
            body["rules"] = json.loads(rules.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise _fail(f"cannot read the rules in {rules}: {exc}") from None
    if password:
        body["password"] = _new_password()
    try:
        response = httpx.post(
            f"{server}/api/v1/links",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach kurz at {server}: {exc}") from None
    if response.status_code != 201:
        try:
            problem = response.json()
            detail = f"{problem.get('title')}: {problem.get('detail')}"
        except ValueError:
            detail = response.text[:200]
        raise _fail(f"{response.status_code} {detail}")
    typer.echo(response.json()["short_url"])


def _server() -> str:
    """Where the API of the kurz the settings describe answers."""
    named = os.environ.get("KURZ_URL")
    if named:
        return named.rstrip("/")
    settings = _settings()
    if "base_url" in settings.model_fields_set:
        return settings.base_url.rstrip("/")
    # Listening everywhere: this machine reaches it over loopback.
    wildcards = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 (compared, never bound)
    host = wildcards.get(settings.host, settings.host)
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.port}"


def _variant(given: str) -> dict[str, Any]:
    """--variant URL=WEIGHT as the API's variant (the URL may hold '=' itself)."""
    target, sep, weight = given.rpartition("=")
    if not sep or not target or not weight.isdigit():
        raise _fail(f"--variant {given!r}: give it as URL=WEIGHT, e.g. https://a.example/=70")
    return {"url": target, "weight": int(weight)}


def _new_password() -> str:
    """A link's password: asked twice, unseen, on a terminal; else standard input's first
    line."""
    if sys.stdin.isatty():
        given: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        return given
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise _fail("--password: no password on standard input")
    return line


class _Unwritable(Exception):
    """The export's output refused a write (a full disk, a closed pipe)."""


@contextmanager
def _output(path: Path | None) -> Iterator[IO[bytes]]:
    """Standard output, or a file that appears whole: written beside it under another
    name and renamed when done, and removed if the export fails (a device or a pipe is
    written to directly)."""
    if path is None:
        yield typer.get_binary_stream("stdout")
        return
    if path.exists() and not path.is_file():
        # A device or a pipe (/dev/stdout, a FIFO): written to as it is, never replaced.
        try:
            stream = path.open("wb", buffering=0)
        except OSError as exc:
            raise _Unwritable(exc.strerror or str(exc)) from None
        with stream:
            yield stream
        return
    try:
        # Unbuffered (the pieces are large): a write that fails says so where it is made,
        # never again when the file closes.
        part = tempfile.NamedTemporaryFile(  # noqa: SIM115 (renamed or removed below)
            buffering=0, dir=path.parent, prefix=f".{path.name}.", suffix=".part", delete=False
        )
    except OSError as exc:
        raise _Unwritable(exc.strerror or str(exc)) from None
    try:
        with part:
            yield part
        try:
            os.replace(part.name, path)
        except OSError as exc:
            raise _Unwritable(exc.strerror or str(exc)) from None
    except BaseException:
        Path(part.name).unlink(missing_ok=True)
        raise


def _put(out: IO[bytes], piece: bytes) -> None:
    """Write `piece` (flush, when empty) to the export's output."""
    try:
        if piece:
            out.write(piece)
        else:
            out.flush()
    except OSError as exc:
        raise _Unwritable(exc.strerror or str(exc)) from None


def _exported(counts: Counts, output: Path | None) -> str:
    rows = counts.clicks_daily + counts.clicks_hourly + counts.breakdowns_daily
    deleted = f" ({counts.deleted_links} deleted)" if counts.deleted_links else ""
    stats = f" and {rows:,} rows of statistics" if rows else ""
    where = output if output is not None else "standard output"
    return f"exported {counts.links:,} links{deleted}{stats} to {where}"


@app.command("export")
def export_links(
    export_format: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="jsonl|csv",
            help="jsonl: every link with every field and its statistics (the kurz format, "
            "which `kurz import kurz` reads); csv: the live links, one row each.",
        ),
    ] = "jsonl",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write here (whole, or not at all) instead of to standard output.",
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(
            metavar="EMAIL",
            help="Only this user's live links, as their own export over the API. "
            "Without it, every link, deleted ones (tombstones) included.",
        ),
    ] = None,
) -> None:
    """Export links and their statistics, from the database (docs/export.md)."""
    from kurz.auth.keys import Keys
    from kurz.clock import system_clock
    from kurz.exports.models import FORMATS
    from kurz.exports.service import Exports

    if export_format not in FORMATS:
        raise _fail(f"--format: {export_format!r} is not one of {', '.join(FORMATS)}")
    if str(output) == "-":
        output = None
    if output is not None and not output.parent.is_dir():
        raise _fail(f"--output: {output.parent} is not a directory")
    if output is not None and output.is_dir():
        raise _fail(f"--output: {output} is a directory")
    settings = _settings()

    async def work(db: Database) -> Counts:
        owner = None if user is None else await Keys(db=db, clock=system_clock).user_named(user)
        exports = Exports(db=db, clock=system_clock, base_url=settings.base_url)
        export = exports.open(
            export_format="csv" if export_format == "csv" else "jsonl",
            user_id=owner,
            statistics=True,
        )
        with _output(output) as out:
            async for piece in export:
                _put(out, piece)
            _put(out, b"")
        return export.counts

    # As `kurz serve` does (kurz.app, ADR 0010's amendment): what is loaded by now lives
    # as long as the command, and the young generation is collected every 10,000
    # allocations, not 700. An export makes objects for every row, which die by
    # reference count; collecting them at Python's default took a third of its time.
    # Given back after, as kurz serve gives them back: a process (a test's) may go on.
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(10_000, *threshold[1:])
    try:
        counts = _with_db(settings, work)
    except _Unwritable as exc:
        raise _fail(f"cannot write the export to {output or 'standard output'}: {exc}") from None
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
    err.print(_exported(counts, output), highlight=False, markup=False, soft_wrap=True)


app.command("backup")(backup)


def main() -> None:
    app(prog_name="kurz")


if __name__ == "__main__":
    main()
