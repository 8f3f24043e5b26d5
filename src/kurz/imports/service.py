"""The import use case: start an import, run it a page at a time as a durable job,
and tell how far it has got (docs/imports.md, ADR 0022).

An import is a row of `imports` and, for a file, the file's pieces in `import_files`:
any worker can run it, and one that dies has it run again from the position of the
last page written (each page is one transaction with the new position). The position
is also the guard against two runs at once (a worker whose lease ran out but goes on):
a page is written only if the position is still the one it read from.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import AsyncIterable, Callable, Collection, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.auth.models import Principal
from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, Database, DatabaseUnavailable
from kurz.db.tables import import_files, import_rows, imports, users
from kurz.errors import Problem, invalid, not_found, validation_problem
from kurz.imports.kinds import KINDS
from kurz.imports.models import ImportRead, ImportReport, ImportRow, Outcome
from kurz.imports.sources import OnConflict, Opening, SourceError, SourceKind
from kurz.imports.writer import Target, write_page
from kurz.jobs import JobStore, Registry
from kurz.links import domains
from kurz.links.service import NO_DOMAIN, Links
from kurz.types import Clock
from kurz.webhooks.models import ImportFinished
from kurz.webhooks.outbox import Outbox

log = logging.getLogger("kurz")

# The job kind that runs an import; its payload: {"import_id": id}.
JOB = "run-import"
# Attempts of an import's job: each is a worker that died or a database that did not
# answer (a source that fails ends the import, failed, without another attempt).
JOB_ATTEMPTS = 20
# An uploaded file is kept in pieces of this size.
PIECE = 1 << 20

_PIECE_READ = 64 * 1024


def _plain(settings: BaseModel) -> dict[str, Any]:
    """Settings as stored: secrets in the clear (the row is cleared when the import ends)."""
    return {
        name: value.get_secret_value() if isinstance(value, SecretStr) else value
        for name, value in settings.model_dump(mode="python").items()
    }


def _read(row: Any) -> ImportRead:
    return ImportRead(
        id=row.id,
        source=row.kind,
        status=row.status,
        on_conflict=row.on_conflict,
        domain=row.domain,
        filename=row.filename,
        total=row.total,
        read=row.read,
        imported=row.imported,
        skipped=row.skipped,
        failed=row.failed,
        clicks=row.clicks,
        error=row.error,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


class Imports:
    """Imports of links (and their statistics) into kurz."""

    def __init__(
        self,
        *,
        db: Database,
        jobs: JobStore,
        clock: Clock,
        links: Links,
        outbox: Outbox,
        max_bytes: int,
        allow_private: bool,
        kinds: Mapping[str, SourceKind] = KINDS,
    ) -> None:
        self.db = db
        self.jobs = jobs
        self.clock = clock
        self.links = links
        self.outbox = outbox
        self.max_bytes = max_bytes
        self.allow_private = allow_private
        self.kinds = kinds

    def register(self, registry: Registry) -> None:
        """The job that runs an import: no time limit (an import may take hours); a
        worker that dies has it run again from its last page."""

        async def run(payload: dict[str, Any]) -> None:
            await self.run(int(payload["import_id"]))

        registry.add(JOB, run, timeout=None)

    async def start(
        self,
        *,
        principal: Principal,
        kind: str,
        settings: Mapping[str, Any],
        file: AsyncIterable[bytes] | None = None,
        filename: str | None = None,
        on_conflict: OnConflict = "skip",
        domain: str | None = None,
        owner: str | None = None,
        enqueue: bool = True,
        allow_private: bool | None = None,
    ) -> ImportRead:
        """A new import, queued: the file kept, a job enqueued (with `enqueue`; else the
        caller runs it, as `kurz import` does). Raises a Problem: 422 for an unknown kind,
        settings it refuses, a file missing or not wanted, a domain kurz does not serve,
        an owner who is not a user (only an admin may name one); 413 for a file over
        KURZ_IMPORT_MAX_BYTES. `allow_private`: whether the source may reach private
        addresses (the CLI's sources may; by default KURZ_IMPORT_ALLOW_PRIVATE)."""
        source = self.kinds.get(kind)
        if source is None:
            raise invalid("source", f"unknown source; one of: {', '.join(sorted(self.kinds))}")
        try:
            checked = source.settings.model_validate(dict(settings))
        except ValidationError as exc:
            raise validation_problem(
                [{**e, "loc": ("body", "settings", *e["loc"])} for e in exc.errors()]
            ) from None
        if source.takes_file and file is None:
            raise invalid("file", f"the source '{kind}' reads a file: upload one")
        if not source.takes_file and file is not None:
            raise invalid("file", f"the source '{kind}' reads no file")
        stored = _plain(checked)
        if allow_private is not None:
            stored["__allow_private"] = allow_private
        async with AsyncExitStack() as stack:
            spooled = None
            if file is not None:
                spooled = await stack.enter_async_context(self._spooled(file))
            now = utcnow(self.clock)
            async with self.db.write(READ_COMMITTED) as conn:
                owner_id = await self._owner(conn, principal, owner)
                if domain is not None:
                    await self._check_domain(conn, domain)
                import_id = (
                    await conn.execute(
                        sa.insert(imports)
                        .values(
                            user_id=owner_id,
                            started_by_user_id=principal.user_id,
                            kind=kind,
                            settings=json.dumps(stored),
                            filename=None if filename is None else filename[-255:],
                            on_conflict=on_conflict,
                            domain=domain,
                            status="queued",
                            created_at=now,
                            updated_at=now,
                        )
                        .returning(imports.c.id)
                    )
                ).scalar_one()
                if spooled is not None:
                    await self._keep(conn, import_id, spooled)
                if enqueue:
                    job = await self.jobs.enqueue(
                        JOB,
                        {"import_id": import_id},
                        max_attempts=JOB_ATTEMPTS,
                        unique_key=_unique(import_id),
                        conn=conn,
                    )
                    await conn.execute(
                        sa.update(imports).where(imports.c.id == import_id).values(job_id=job.id)
                    )
                row = (
                    await conn.execute(sa.select(imports).where(imports.c.id == import_id))
                ).one()
        return _read(row)

    @asynccontextmanager
    async def _spooled(self, file: AsyncIterable[bytes]) -> Any:
        """The upload in a temporary file (never whole in memory), before any
        transaction: a slow upload holds no lock. 413 past the limit."""
        with tempfile.TemporaryFile() as spool:
            size = 0
            async for chunk in file:
                size += len(chunk)
                if size > self.max_bytes:
                    raise Problem(
                        413,
                        "payload-too-large",
                        "Payload Too Large",
                        f"The file exceeds {self.max_bytes:,} bytes (KURZ_IMPORT_MAX_BYTES).",
                    )
                spool.write(chunk)
            spool.seek(0)
            yield spool

    async def _keep(self, conn: AsyncConnection, import_id: int, spool: Any) -> None:
        piece = 0
        while data := spool.read(PIECE):
            await conn.execute(
                sa.insert(import_files).values(import_id=import_id, piece=piece, data=data)
            )
            piece += 1

    async def _owner(self, conn: AsyncConnection, principal: Principal, owner: str | None) -> int:
        if owner is None:
            return principal.user_id
        if not principal.is_admin:
            raise invalid("owner", "only an admin may import links for another user")
        found = (
            await conn.execute(sa.select(users.c.id).where(users.c.email == owner.strip().lower()))
        ).scalar()
        if found is None:
            raise invalid("owner", "no user has this email")
        return int(found)

    async def _check_domain(self, conn: AsyncConnection, domain: str) -> None:
        found = await domains.id_of(conn, domain, default_host=self.links.default_host)
        if found is None:
            raise invalid("domain", NO_DOMAIN)

    async def run(
        self, import_id: int, *, progress: Callable[[ImportRead], None] | None = None
    ) -> ImportRead:
        """Run the import from where it stopped to its end (the job's body, and
        `kurz import`'s): each page one transaction; `progress` after each. Ends
        finished, or failed with the error that stopped it (a SourceError; not raised).
        A database that does not answer is raised (the job tries again later)."""
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(imports).where(imports.c.id == import_id))).one()
        if row.status in ("finished", "failed"):
            return _read(row)
        kind = self.kinds.get(row.kind)
        if kind is None:
            return await self._end(row, error=f"kurz knows no source '{row.kind}' any more")
        stored = json.loads(row.settings or "{}")
        allow_private = bool(stored.pop("__allow_private", self.allow_private))
        owner = await self._principal(row.user_id)
        target = Target(
            import_id=import_id,
            owner=owner,
            source=kind.source,
            on_conflict=row.on_conflict,
            domain=row.domain,
            default_host=self.links.default_host,
            base_url=self.links.base_url,
            own=self.links.own,
        )
        now = utcnow(self.clock)
        async with self.db.write(READ_COMMITTED) as conn:
            await conn.execute(
                sa.update(imports)
                .where(imports.c.id == import_id)
                .values(status="running", started_at=sa.func.coalesce(imports.c.started_at, now))
            )
        with tempfile.TemporaryDirectory(prefix="kurz-import-") as place:
            path = await self._file(import_id, Path(place)) if kind.takes_file else None
            try:
                opening = Opening(
                    settings=kind.settings.model_validate(stored),
                    file=path,
                    allow_private=allow_private,
                )
                source = kind.open(opening)
            except (SourceError, ValidationError) as exc:
                return await self._end(row, error=str(exc))
            try:
                return await self._pages(import_id, source, target, progress)
            except SourceError as exc:
                return await self._end(row, error=str(exc))
            except (DatabaseUnavailable, _Overtaken):
                raise
            except Exception:
                log.exception("import %s stopped", import_id)
                return await self._end(row, error="an unexpected error stopped it (see the log)")
            finally:
                await source.aclose()

    async def _pages(
        self,
        import_id: int,
        source: Any,
        target: Target,
        progress: Callable[[ImportRead], None] | None,
    ) -> ImportRead:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(imports).where(imports.c.id == import_id))).one()
        if row.total is None:
            total = await source.total()
            if total is not None:
                async with self.db.write(READ_COMMITTED) as conn:
                    await conn.execute(
                        sa.update(imports).where(imports.c.id == import_id).values(total=total)
                    )
        position = row.position
        async for page in source.pages(position):
            now = utcnow(self.clock)
            async with self.db.write(READ_COMMITTED) as conn:
                row = (
                    await conn.execute(
                        sa.update(imports)
                        .where(imports.c.id == import_id, _at(position))
                        .values(position=page.position, updated_at=now)
                        .returning(imports)
                    )
                ).first()
                if row is None:
                    raise _Overtaken(import_id)
                written = await write_page(conn, target, page.items, first_n=row.read + 1, now=now)
                row = (
                    await conn.execute(
                        sa.update(imports)
                        .where(imports.c.id == import_id)
                        .values(
                            read=imports.c.read + written.read,
                            imported=imports.c.imported + written.imported,
                            skipped=imports.c.skipped + written.skipped,
                            failed=imports.c.failed + written.failed,
                            clicks=imports.c.clicks + written.clicks,
                        )
                        .returning(imports)
                    )
                ).one()
            position = page.position
            if written.made:
                # A process may remember a code as unknown (a visitor tried it first).
                await self.links.cache.changed_many(written.made)
            if progress is not None:
                progress(_read(row))
        return await self._end(row, error=None)

    async def _end(self, row: Any, *, error: str | None) -> ImportRead:
        """Mark the import finished (or failed), clear its settings and file, and tell
        its owner's webhooks, in one transaction."""
        now = utcnow(self.clock)
        async with self.db.write(READ_COMMITTED) as conn:
            ended = (
                await conn.execute(
                    sa.update(imports)
                    .where(imports.c.id == row.id, imports.c.status.in_(("queued", "running")))
                    .values(
                        status="failed" if error else "finished",
                        error=error,
                        settings=None,
                        finished_at=now,
                        updated_at=now,
                        started_at=sa.func.coalesce(imports.c.started_at, now),
                    )
                    .returning(imports)
                )
            ).first()
            if ended is None:  # another run ended it
                ended = (await conn.execute(sa.select(imports).where(imports.c.id == row.id))).one()
                return _read(ended)
            await conn.execute(sa.delete(import_files).where(import_files.c.import_id == row.id))
            await self.outbox.import_finished(
                conn,
                user_id=ended.user_id,
                finished=ImportFinished(
                    id=ended.id,
                    source=ended.kind,
                    status=ended.status,
                    imported=ended.imported,
                    skipped=ended.skipped,
                    failed=ended.failed,
                    started_at=ended.started_at,
                    finished_at=now,
                    error=error,
                ),
            )
        return _read(ended)

    async def _principal(self, user_id: int) -> Principal:
        async with self.db.read() as conn:
            found = (
                await conn.execute(
                    sa.select(users.c.role, users.c.email).where(users.c.id == user_id)
                )
            ).one()
        return Principal(user_id=user_id, role=found.role, scopes=frozenset(), name=found.email)

    async def _file(self, import_id: int, place: Path) -> Path:
        """The import's file, copied from its pieces to a local file, a piece at a time."""
        path = place / "upload"
        piece = 0
        with path.open("wb") as out:
            while True:
                async with self.db.read() as conn:
                    data = (
                        await conn.execute(
                            sa.select(import_files.c.data).where(
                                import_files.c.import_id == import_id,
                                import_files.c.piece == piece,
                            )
                        )
                    ).scalar()
                if data is None:
                    break
                out.write(data)
                piece += 1
            out.flush()
            os.fsync(out.fileno())
        return path

    async def resume(self, import_id: int, *, principal: Principal) -> ImportRead:
        """Enqueue the job again of an import left running by a process that died
        without a job (a `kurz import` killed); a no-op for an import with its job
        unfinished, or an import that ended."""
        found = await self.get(import_id, principal=principal)
        if found.status in ("finished", "failed"):
            return found
        async with self.db.write(READ_COMMITTED) as conn:
            job = await self.jobs.enqueue(
                JOB,
                {"import_id": import_id},
                max_attempts=JOB_ATTEMPTS,
                unique_key=_unique(import_id),
                conn=conn,
            )
            await conn.execute(
                sa.update(imports).where(imports.c.id == import_id).values(job_id=job.id)
            )
        return await self.get(import_id, principal=principal)

    async def get(self, import_id: int, *, principal: Principal) -> ImportRead:
        """The import; 404 unless it is the principal's (or the principal is an admin)."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    sa.select(imports).where(imports.c.id == import_id, *_visible(principal))
                )
            ).first()
        if row is None:
            raise not_found(f"No import {import_id}.")
        return _read(row)

    async def list(
        self, *, principal: Principal, after: int | None = None, limit: int = 50
    ) -> list[ImportRead]:
        """The principal's imports (an admin's: every import), newest first, ids below
        `after`."""
        query = sa.select(imports).where(*_visible(principal))
        if after is not None:
            query = query.where(imports.c.id < after)
        async with self.db.read() as conn:
            found = await conn.execute(query.order_by(imports.c.id.desc()).limit(limit))
            return [_read(row) for row in found]

    async def report(
        self,
        import_id: int,
        *,
        principal: Principal,
        after: int = 0,
        limit: int = 100,
        outcomes: Collection[Outcome] | None = None,
    ) -> ImportReport:
        """The report's rows after row `after`, in order; only `outcomes` if given."""
        await self.get(import_id, principal=principal)
        query = sa.select(import_rows).where(
            import_rows.c.import_id == import_id, import_rows.c.n > after
        )
        if outcomes:
            query = query.where(import_rows.c.outcome.in_(list(outcomes)))
        async with self.db.read() as conn:
            found = (await conn.execute(query.order_by(import_rows.c.n).limit(limit + 1))).all()
        rows = [
            ImportRow(
                n=row.n,
                place=row.place,
                source_id=row.source_id,
                outcome=row.outcome,
                code=row.code,
                reason=row.reason,
            )
            for row in found[:limit]
        ]
        more = len(found) > limit
        return ImportReport(rows=rows, next_after=rows[-1].n if more and rows else None)


class _Overtaken(Exception):
    """Another run of the import wrote the page this one read: this one stops."""

    def __init__(self, import_id: int) -> None:
        super().__init__(f"import {import_id} was run further elsewhere; this run stops")


def _unique(import_id: int) -> str:
    """An import's job's unique key: at most one unfinished job runs an import."""
    return f"import:{import_id}"


def _at(position: str | None) -> sa.ColumnElement[bool]:
    return imports.c.position.is_(None) if position is None else imports.c.position == position


def _visible(principal: Principal) -> list[sa.ColumnElement[bool]]:
    return [] if principal.is_admin else [imports.c.user_id == principal.user_id]
