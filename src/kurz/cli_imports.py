"""`kurz import`: links from another shortener or a file, imported on the server by its
operator (docs/imports.md). Run here with a progress bar, or queued for a worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from kurz.auth.models import ROLE_SCOPES, Principal
from kurz.cli_output import console
from kurz.cli_settings import database_failure, fail, read_settings, require_database, usage
from kurz.errors import Problem
from kurz.extras import MissingExtra
from kurz.geo import GeoDataError
from kurz.imports.models import ImportRead, ImportRow, Outcome
from kurz.imports.sources import ON_CONFLICT

if TYPE_CHECKING:
    # Imported when a command runs, not by `kurz --help` (kurz.cli).
    from rich.progress import Progress

    from kurz.bootstrap import Parts
    from kurz.config import Settings

T = TypeVar("T")

imports = typer.Typer(
    help="Import links (and their clicks) from another shortener or a file (docs/imports.md).",
    no_args_is_help=True,
)
# Unbounded on a pipe: a report row stays one line (kurz.cli_output).
out = console()
err = Console(stderr=True)
# Report rows printed after a run, of each outcome.
FIRST: Final = 10
PIECE: Final = 1024 * 1024
OUTCOMES: Final[tuple[Outcome, ...]] = ("failed", "skipped", "renamed", "imported")
# Said of every option that takes a secret.
SEEN: Final = "Shows in the process list: prefer the environment variable."


def _usage(message: str) -> typer.Exit:
    return usage(message)


def _fail(message: str) -> typer.Exit:
    return fail(message)


def _settings() -> Settings:
    found = read_settings()
    # A process of its own, which serves nothing and runs no other job.
    return found.model_copy(update={"embedded_worker": False, "grpc_port": 0, "analytics": False})


def _with_parts(work: Callable[[Parts], Awaitable[T]]) -> T:
    """Run `work` over kurz's parts, started; a refusal or an unreachable database is
    a message and an exit status, never a traceback."""
    # Looked up when a command runs (tests hand kurz.bootstrap another build).
    from sqlalchemy.exc import DBAPIError

    from kurz.bootstrap import build, running
    from kurz.db import DatabaseUnavailable, SchemaNotReady

    settings = _settings()
    require_database(settings)
    try:
        parts = build(settings)
    except (GeoDataError, MissingExtra) as exc:
        raise _fail(str(exc)) from None

    async def run() -> T:
        async with running(parts) as ready:
            return await work(ready)

    try:
        return asyncio.run(run())
    except SchemaNotReady as exc:
        raise _fail(str(exc)) from None
    except (OSError, DatabaseUnavailable, DBAPIError) as exc:
        raise database_failure(exc, settings) from None
    except Problem as problem:
        # What the API would answer with a 4xx is the operator's input refused.
        if problem.status < 500:
            raise _usage(problem.detail) from None
        raise _fail(problem.detail) from None


async def _operator(parts: Parts, owner: str | None, *, starting: bool = True) -> Principal:
    """Whom `kurz import` acts as: an admin (the operator may do anything), the first
    enabled one; with no admin yet, the `--owner` named (or, only to read and resume
    imports, no user at all)."""
    from kurz.accounts import emails, users

    async with parts.db.read() as conn:
        found = await users.list_(conn, limit=1, role="admin", disabled=False)
        if not found and owner is not None:
            try:
                named = await users.by_email(conn, emails.normalise(owner))
            except ValueError as exc:
                raise _usage(f"--owner: {exc}") from None
            found = [] if named is None else [named]
    if not found and not starting:
        return Principal(user_id=0, role="admin", scopes=ROLE_SCOPES["admin"], name="kurz import")
    if not found:
        raise _usage(
            "no admin to import for: name whose links they are with --owner EMAIL, or make "
            "an admin first (kurz users create --email E --admin)"
        )
    return Principal(
        user_id=found[0].id, role="admin", scopes=ROLE_SCOPES["admin"], name="kurz import"
    )


async def _pieces(path: Path) -> AsyncIterator[bytes]:
    """The file, a piece at a time (a local file: reading it does not wait for long)."""
    with path.open("rb") as file:
        while piece := file.read(PIECE):
            yield piece


OnConflictOption = Annotated[
    str,
    typer.Option(
        "--on-conflict",
        metavar="skip|rename|fail",
        help="A link whose alias is taken in kurz: skipped, renamed (alias-2, ...), or failed.",
    ),
]
DomainOption = Annotated[
    str | None,
    typer.Option(metavar="HOST", help="Where links go that name no domain (default: the default)."),
]
OwnerOption = Annotated[
    str | None,
    typer.Option(
        metavar="EMAIL",
        help="Whose links they become (default: the first admin).",
    ),
]
DetachOption = Annotated[
    bool,
    typer.Option(
        "--detach",
        help="Queue it for kurz serve's worker (or kurz worker) and print its id, instead "
        "of running it here.",
    ),
]
FileArgument = Annotated[
    Path,
    typer.Argument(
        metavar="FILE", exists=True, dir_okay=False, readable=True, help="The exported file."
    ),
]
MaybeFile = Annotated[
    Path | None,
    typer.Argument(
        metavar="FILE", exists=True, dir_okay=False, readable=True, help="The exported file."
    ),
]
ApiUrl = Annotated[str | None, typer.Option(metavar="URL", help="The API's address.")]
ApiKey = Annotated[
    str | None,
    typer.Option(
        metavar="KEY", envvar="KURZ_IMPORT_API_KEY", show_envvar=True, help=f"Its API key. {SEEN}"
    ),
]
Timezone = Annotated[
    str | None,
    typer.Option(
        metavar="ZONE",
        help="The zone its database wrote local times in (an IANA name; default: UTC).",
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        metavar="URL",
        envvar="KURZ_IMPORT_DATABASE_URL",
        show_envvar=True,
        help=f"Its database, e.g. mysql://user:password@host/db or postgresql://... {SEEN}",
    ),
]


@dataclass(frozen=True, slots=True)
class Common:
    """The options every source's command takes."""

    on_conflict: str
    domain: str | None
    owner: str | None
    detach: bool


def _start(kind: str, settings: Mapping[str, Any], file: Path | None, common: Common) -> None:
    """Start the import; queue it (`detach`), or run it here to its end and report."""
    on_conflict, domain, owner, detach = (
        common.on_conflict, common.domain, common.owner, common.detach
    )  # fmt: skip
    if on_conflict not in ON_CONFLICT:
        raise _usage(f"--on-conflict: {on_conflict!r} is not one of {', '.join(ON_CONFLICT)}")
    given = {name: value for name, value in settings.items() if value is not None}
    started: list[int] = []

    async def work(parts: Parts) -> tuple[ImportRead, dict[str, list[ImportRow]]]:
        principal = await _operator(parts, owner)
        made = await parts.imports.start(
            principal=principal,
            kind=kind,
            settings=given,
            file=None if file is None else _pieces(file),
            filename=None if file is None else file.name,
            on_conflict=on_conflict,
            domain=domain,
            owner=owner,
            enqueue=detach,
            # Its operator runs it, on the server: as they could reach them themselves.
            allow_private=True,
        )
        started.append(made.id)
        if detach:
            return made, {}
        with _progress(made) as update:
            done = await parts.imports.run(made.id, progress=update)
        return done, await _first_rows(parts, principal, done.id, FIRST)

    try:
        done, rows = _with_parts(work)
    except KeyboardInterrupt:
        said = "interrupted before the import started"
        if started:
            said = (
                f"interrupted: import {started[0]} stays where it got to; "
                f"`kurz import resume {started[0]}` goes on from there"
            )
        _fail(said)
        # As a shell reports a process that Ctrl-C stopped.
        raise typer.Exit(130) from None
    if detach:
        err.print(
            f"import {done.id} is queued: kurz serve's worker (or kurz worker) runs it; "
            f"`kurz import status {done.id}` follows it",
            highlight=False,
            soft_wrap=True,
        )
        # The id alone on stdout, so that `ID=$(kurz import ... --detach)` works.
        typer.echo(done.id)
        return
    _summary(done)
    for outcome, total in (("failed", done.failed), ("skipped", done.skipped)):
        shown = rows.get(outcome, [])
        _rows_table(shown, f"{outcome} (the first {len(shown)} of {total:,})"
                    if total > len(shown) else outcome)  # fmt: skip
    if done.failed + done.skipped > 0:
        out.print(f"The whole report: kurz import status {done.id}", highlight=False)
    if done.status == "failed":
        raise _fail(f"import {done.id} failed: {done.error}")


class _Bar:
    """The progress bar on a terminal, updated after each page the import writes."""

    def __init__(self, progress: Progress, started: ImportRead) -> None:
        self.progress = progress
        self.task = progress.add_task(f"import {started.id}", total=started.total)

    def __call__(self, now: ImportRead) -> None:
        self.progress.update(self.task, completed=now.read, total=now.total)

    def __enter__(self) -> _Bar:
        self.progress.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.progress.stop()


def _progress(started: ImportRead) -> _Bar:
    # Imported here: rich.progress is not needed by the other commands or --help.
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Rate(ProgressColumn):
        """Links read a second."""

        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            shown = "" if speed is None else f"{speed:,.0f} links/s"
            return Text(shown, style="progress.data.speed")

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        Rate(),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        console=err,
        # Not on a pipe or in a log: the counts after say it all.
        disable=not err.is_terminal,
    )
    return _Bar(progress, started)


async def _first_rows(
    parts: Parts, principal: Principal, import_id: int, limit: int
) -> dict[str, list[ImportRow]]:
    found: dict[str, list[ImportRow]] = {}
    outcome: Outcome
    for outcome in ("failed", "skipped"):
        report = await parts.imports.report(
            import_id, principal=principal, limit=limit, outcomes=[outcome]
        )
        found[outcome] = report.rows
    return found


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else ""


def _summary(read: ImportRead) -> None:
    of = "" if read.total is None else f" of {read.total:,}"
    out.print(
        f"import {read.id} ({read.source}{f', {read.filename}' if read.filename else ''}): "
        f"{read.status}; read {read.read:,}{of}: imported {read.imported:,}, "
        f"skipped {read.skipped:,}, failed {read.failed:,}; {read.clicks:,} clicks",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def _rows_table(rows: list[ImportRow], title: str) -> None:
    if not rows:
        return
    table = Table("#", "where", "outcome", "code", "why", title=title, title_justify="left")
    for row in rows:
        table.add_row(str(row.n), row.place, row.outcome, row.code or "", row.reason or "")
    out.print(table)


@imports.command("csv")
def import_csv(
    file: FileArgument,
    on_conflict: OnConflictOption = "skip",
    domain: DomainOption = None,
    owner: OwnerOption = None,
    detach: DetachOption = False,
) -> None:
    """A CSV file with a header row naming url (and alias, title, tags...): docs/imports/csv.md."""
    _start("csv", {}, file, Common(on_conflict, domain, owner, detach))


@imports.command("kurz")
def import_kurz(
    file: FileArgument,
    on_conflict: OnConflictOption = "skip",
    domain: DomainOption = None,
    owner: OwnerOption = None,
    detach: DetachOption = False,
) -> None:
    """A kurz export (kurz export's JSON Lines), with every field and the statistics."""
    _start("kurz", {}, file, Common(on_conflict, domain, owner, detach))


@imports.command("bitly")
def import_bitly(
    file: MaybeFile = None,
    token: Annotated[
        str | None,
        typer.Option(
            metavar="TOKEN",
            envvar="KURZ_IMPORT_TOKEN",
            show_envvar=True,
            help=f"A Bitly access token: read the links and their clicks over the API. {SEEN}",
        ),
    ] = None,
    api_url: ApiUrl = None,
    group: Annotated[
        str | None,
        typer.Option(metavar="GUID", help="The group to read (default: the token's default)."),
    ] = None,
    clicks: Annotated[
        bool | None,
        typer.Option(
            "--clicks/--no-clicks",
            help="Read each link's clicks by day, a request per link (the default); or not.",
            show_default=False,
        ),
    ] = None,
    on_conflict: OnConflictOption = "skip",
    domain: DomainOption = None,
    owner: OwnerOption = None,
    detach: DetachOption = False,
) -> None:
    """Bitly: its CSV export (FILE), or its API (--token), with the clicks."""
    common = Common(on_conflict, domain, owner, detach)
    if file is not None:
        if token is not None or api_url is not None or group is not None or clicks is not None:
            raise _usage("give a FILE or --token (or KURZ_IMPORT_TOKEN), not both")
        _start("bitly-csv", {}, file, common)
        return
    if token is None:
        raise _usage("give the CSV export as FILE, or --token (or KURZ_IMPORT_TOKEN)")
    settings = {"token": token, "api_url": api_url, "group_guid": group, "clicks": clicks}
    _start("bitly", settings, None, common)


@imports.command("yourls")
def import_yourls(
    database_url: DatabaseUrl = None,
    table_prefix: Annotated[
        str | None, typer.Option(metavar="PREFIX", help="Its tables' prefix (default: yourls_).")
    ] = None,
    timezone: Timezone = None,
    on_conflict: OnConflictOption = "skip",
    domain: DomainOption = None,
    owner: OwnerOption = None,
    detach: DetachOption = False,
) -> None:
    """YOURLS, from its database, with the clicks."""
    if database_url is None:
        raise _usage("give --database-url (or KURZ_IMPORT_DATABASE_URL)")
    settings = {"database_url": database_url, "table_prefix": table_prefix, "timezone": timezone}
    _start("yourls", settings, None, Common(on_conflict, domain, owner, detach))


@imports.command("kutt")
def import_kutt(
    database_url: DatabaseUrl = None,
    timezone: Timezone = None,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    on_conflict: OnConflictOption = "skip",
    domain: DomainOption = None,
    owner: OwnerOption = None,
    detach: DetachOption = False,
) -> None:
    """Kutt: from its database (--database-url), or its API (--api-url and --api-key)."""
    common = Common(on_conflict, domain, owner, detach)
    if database_url is not None:
        if api_url is not None or api_key is not None:
            raise _usage(
                "give --database-url (or KURZ_IMPORT_DATABASE_URL) or --api-url and "
                "--api-key, not both"
            )
        _start("kutt", {"database_url": database_url, "timezone": timezone}, None, common)
        return
    if api_url is None or api_key is None:
        raise _usage(
            "give --database-url (or KURZ_IMPORT_DATABASE_URL), or --api-url and --api-key "
            "(or KURZ_IMPORT_API_KEY)"
        )
    if timezone is not None:
        raise _usage("--timezone is for Kutt's database (--database-url) only")
    _start("kutt-api", {"api_url": api_url, "api_key": api_key}, None, common)


@imports.command("shlink")
def import_shlink(
    file: MaybeFile = None,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    default_domain: Annotated[
        str | None,
        typer.Option(
            metavar="HOST",
            help="With FILE: Shlink's default domain, whose links the export names by "
            "host (they then match the links its API names as DEFAULT).",
        ),
    ] = None,
    on_conflict: OnConflictOption = "skip",
    domain: DomainOption = None,
    owner: OwnerOption = None,
    detach: DetachOption = False,
) -> None:
    """Shlink: its CSV export (FILE), or its API (--api-url and --api-key), with the visits."""
    common = Common(on_conflict, domain, owner, detach)
    if file is not None:
        if api_url is not None or api_key is not None:
            raise _usage("give a FILE or --api-url and --api-key, not both")
        settings = {} if default_domain is None else {"default_domain": default_domain}
        _start("shlink-csv", settings, file, common)
        return
    if default_domain is not None:
        raise _usage("--default-domain goes with a FILE (Shlink's API names its default domain)")
    if api_url is None or api_key is None:
        raise _usage(
            "give the CSV export as FILE, or --api-url and --api-key (or KURZ_IMPORT_API_KEY)"
        )
    _start("shlink", {"api_url": api_url, "api_key": api_key}, None, common)


ImportId = Annotated[int, typer.Argument(metavar="ID", min=1, help="The import's id.")]


@imports.command("status")
def import_status(
    import_id: ImportId,
    outcome: Annotated[
        list[str] | None,
        typer.Option(
            metavar="OUTCOME",
            help="Only rows with this outcome (failed, skipped, renamed, imported); repeat "
            "for more. Default: failures first, then the rest.",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=0, help="Rows shown at most, of each part (0: every row).")
    ] = 20,
) -> None:
    """Show an import, how far it has got, and its report: failures first."""
    chosen = outcome or []
    unknown = [name for name in chosen if name not in OUTCOMES]
    if unknown:
        raise _usage(f"--outcome: {unknown[0]!r} is not one of {', '.join(OUTCOMES)}")
    parts_of: list[tuple[str, list[Outcome]]]
    if chosen:
        parts_of = [(", ".join(chosen), [name for name in OUTCOMES if name in chosen])]
    else:
        parts_of = [("failed", ["failed"]), ("the rest", ["skipped", "renamed", "imported"])]

    async def work(parts: Parts) -> tuple[ImportRead, list[tuple[str, list[ImportRow], bool]]]:
        principal = await _operator(parts, None, starting=False)
        found = await parts.imports.get(import_id, principal=principal)
        shown = []
        for title, outcomes in parts_of:
            rows: list[ImportRow] = []
            after, more = 0, True
            while more and (limit == 0 or len(rows) < limit):
                page = min(1_000, limit - len(rows)) if limit else 1_000
                report = await parts.imports.report(
                    import_id, principal=principal, after=after, limit=page, outcomes=outcomes
                )
                rows += report.rows
                more = report.next_after is not None
                after = report.next_after or after
            shown.append((title, rows, more))
        return found, shown

    found, shown = _with_parts(work)
    _summary(found)
    out.print(
        f"started {_when(found.started_at) or 'not yet'}"
        + (f", ended {_when(found.finished_at)}" if found.finished_at else "")
        + f"; a taken alias: {found.on_conflict}; domain: {found.domain or 'the default'}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    if found.error:
        out.print(f"error: {found.error}", highlight=False, markup=False, soft_wrap=True)
    for title, rows, more in shown:
        _rows_table(rows, title)
        if more:
            out.print(f"({title}: more rows; --limit 0 shows them all)", highlight=False)


@imports.command("resume")
def import_resume(import_id: ImportId) -> None:
    """Queue again an import a killed `kurz import` left running, for a worker to go on."""

    async def work(parts: Parts) -> ImportRead:
        principal = await _operator(parts, None, starting=False)
        return await parts.imports.resume(import_id, principal=principal)

    found = _with_parts(work)
    if found.status in {"finished", "failed"}:
        _summary(found)
        err.print(f"import {found.id} has ended: nothing to resume", highlight=False)
        return
    err.print(
        f"import {found.id} is queued again: kurz serve's worker (or kurz worker) goes on from "
        f"link {found.read:,}; `kurz import status {found.id}` follows it",
        highlight=False,
        soft_wrap=True,
    )
