"""`kurz links`: list, show, delete links and read their clicks from the server's shell,
through the use cases the API calls (kurz.links.service.Links, kurz.analytics Stats),
acting as the first admin."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Final, TypeVar

import typer
from rich.table import Table

from kurz.auth.models import ROLE_SCOPES, Principal
from kurz.cli_output import JSON_HELP, console, document, failure, lines, said, usage
from kurz.cli_settings import database_failure, read_settings, require_database
from kurz.errors import Problem

if TYPE_CHECKING:
    from kurz.analytics.models import LinkStats
    from kurz.bootstrap import Parts
    from kurz.config import Settings
    from kurz.links.models import LinkRead

T = TypeVar("T")

links = typer.Typer(
    help="List, show and delete links, and read their clicks (as the first admin).",
    no_args_is_help=True,
)
# The API's page size; the command pages through as many as --limit asks.
PAGE: Final = 100
NAME: Final = "kurz links"

JsonOption = Annotated[bool, typer.Option("--json", help=JSON_HELP)]
CodeArgument = Annotated[str, typer.Argument(metavar="CODE", help="The link's code.")]
DomainOption = Annotated[
    str | None,
    typer.Option(metavar="HOST", help="The link's domain (default: the default domain)."),
]


def _settings() -> Settings:
    found = read_settings()
    # A process of its own, which serves nothing, runs no job and counts no click.
    return found.model_copy(update={"embedded_worker": False, "grpc_port": 0, "analytics": False})


def _with_parts(work: Callable[[Parts], Awaitable[T]]) -> T:
    """Run `work` over kurz's parts, started: a delete reaches the caches (over
    Redis, scaled out) and webhooks as the API's does."""
    from sqlalchemy.exc import DBAPIError

    from kurz.bootstrap import build, running
    from kurz.db import DatabaseUnavailable, SchemaNotReady
    from kurz.extras import MissingExtra
    from kurz.geo import GeoDataError

    settings = _settings()
    require_database(settings)
    try:
        parts = build(settings)
    except (GeoDataError, MissingExtra) as exc:
        raise failure(str(exc)) from None

    async def run() -> T:
        async with running(parts) as ready:
            return await work(ready)

    try:
        return asyncio.run(run())
    except SchemaNotReady as exc:
        raise failure(str(exc)) from None
    except (OSError, DatabaseUnavailable, DBAPIError) as exc:
        raise database_failure(exc, settings) from None
    except Problem as problem:
        # What the API would answer with a 4xx is the operator's input refused.
        if problem.status < 500:
            raise usage(problem.detail) from None
        raise failure(problem.detail) from None


async def _operator(parts: Parts, *, writing: bool = False) -> Principal:
    """Whom `kurz links` acts as: the first enabled admin, who may see every link. With
    no admin yet, reading needs no user; a delete names who made it, so it needs one."""
    from kurz.accounts import users

    async with parts.db.read() as conn:
        found = await users.list_(conn, limit=1, role="admin", disabled=False)
    if found:
        return Principal(user_id=found[0].id, role="admin", scopes=ROLE_SCOPES["admin"], name=NAME)
    if writing:
        raise usage("no admin to act as: make one first (kurz users create --email E --admin)")
    return Principal(user_id=0, role="admin", scopes=ROLE_SCOPES["admin"], name=NAME)


async def _member(parts: Parts, email: str) -> Principal:
    """`email`'s user, as a member: only their own links (an admin's too)."""
    from kurz.accounts import emails, users

    async with parts.db.read() as conn:
        try:
            found = await users.by_email(conn, emails.normalise(email))
        except ValueError as exc:
            raise usage(f"--user: {exc}") from None
    if found is None:
        raise usage(f"--user: no user {email}")
    return Principal(user_id=found.id, role="member", scopes=ROLE_SCOPES["member"], name=NAME)


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else ""


@links.command("list")
def links_list(
    search: Annotated[
        str | None,
        typer.Option(
            "--search", "-q", help="Only links whose code, URL, title or a tag holds this text."
        ),
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option(help="Only links with this tag; repeat: with every one.")
    ] = None,
    domain: Annotated[str | None, typer.Option(metavar="HOST", help="Only this domain's.")] = None,
    user: Annotated[
        str | None, typer.Option(metavar="EMAIL", help="Only this user's links.")
    ] = None,
    sort: Annotated[str, typer.Option(metavar="newest|oldest|code", help="The order.")] = "newest",
    limit: Annotated[int, typer.Option(min=1, max=1_000_000, help="Links shown at most.")] = 50,
    cursor: Annotated[
        str | None, typer.Option(help="Go on where an earlier list stopped (it says how).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List every user's live links (or one user's), newest first, as the API searches."""

    async def work(parts: Parts) -> tuple[list[LinkRead], str | None]:
        principal = await (_operator(parts) if user is None else _member(parts, user))
        found: list[LinkRead] = []
        after = cursor
        while True:
            page = await parts.links.list_(
                principal=principal,
                limit=min(PAGE, limit - len(found)),
                cursor=after,
                tags=tag or (),
                domain=domain,
                q=search,
                sort=sort,
            )
            found += page.items
            after = page.next_cursor
            if after is None or len(found) >= limit:
                return found, after

    found, after = _with_parts(work)
    if as_json:
        lines(found)
    else:
        table = Table("code", "short URL", "URL", "tags", "created", "expires")
        for link in found:
            table.add_row(
                link.code,
                link.short_url,
                link.url,
                " ".join(link.tags),
                _when(link.created_at),
                _when(link.expires_at),
            )
        console().print(table)
    if after is not None:
        said(f"more: kurz links list --cursor {after} (with the same filters)")


@links.command("show")
def links_show(
    code: CodeArgument, domain: DomainOption = None, as_json: JsonOption = False
) -> None:
    """Show a link, every field."""

    async def work(parts: Parts) -> LinkRead:
        principal = await _operator(parts)
        return await parts.links.get(principal=principal, code=code, domain=domain)

    link = _with_parts(work)
    if as_json:
        document(link)
        return
    table = Table("field", "value", show_header=False)
    for name, value in link.model_dump(mode="json", by_alias=True).items():
        if value in (None, [], {}):
            continue
        shown = " ".join(map(str, value)) if name == "tags" else value
        table.add_row(name, shown if isinstance(shown, str) else _json(shown))
    console().print(table)


def _json(value: object) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


@links.command("delete")
def links_delete(
    code: CodeArgument,
    domain: DomainOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask first.")] = False,
) -> None:
    """Delete a link (asked first), leaving a tombstone as the API does.

    The tombstone keeps its code from ever being used again; its statistics stay.
    """
    if not yes:
        where = f" on {domain}" if domain else ""
        if not typer.confirm(f"Delete the link {code}{where}? Its code is never used again"):
            said("nothing deleted")
            raise typer.Exit(1)

    async def work(parts: Parts) -> None:
        from kurz.links.queries import Versions

        principal = await _operator(parts, writing=True)
        await parts.links.delete(
            principal=principal, code=code, versions=Versions.any(), domain=domain
        )

    _with_parts(work)
    said(f"deleted {code}")


@links.command("stats")
def links_stats(
    code: CodeArgument,
    domain: DomainOption = None,
    days: Annotated[
        int, typer.Option(min=1, max=1_096, help="The last N UTC days, today included.")
    ] = 30,
    top: Annotated[int, typer.Option(min=1, max=100, help="Values per breakdown.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """A link's clicks by day, and its top referrers, browsers, countries..."""

    async def work(parts: Parts) -> LinkStats:
        principal = await _operator(parts)
        span = parts.stats.recent(days=days, interval="day")
        return await parts.stats.link(
            principal=principal, code=code, span=span, top=top, domain=domain
        )

    found = _with_parts(work)
    if as_json:
        document(found)
        return
    out = console()
    totals = found.totals
    out.print(
        f"{found.code}: {totals.clicks:,} clicks, {totals.uniques:,} visitor-days, "
        f"{totals.bot_clicks:,} by bots, {found.start.date()} to {found.end.date()} (UTC)",
        highlight=False,
        markup=False,
    )
    series = Table("day", "clicks", "uniques", "bots")
    for point in found.series:
        series.add_row(
            point.at.date().isoformat(), f"{point.clicks:,}", f"{point.uniques:,}",
            f"{point.bot_clicks:,}",
        )  # fmt: skip
    out.print(series)
    breakdowns = found.top.model_dump(exclude={"start", "end"})
    for name, values in breakdowns.items():
        if not values:
            continue
        table = Table(name, "clicks", title_justify="left")
        for each in values:
            table.add_row(each["value"], f"{each['clicks']:,}")
        out.print(table)
