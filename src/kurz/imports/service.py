"""The import use case: start an import, run it a page at a time as a durable job,
and tell how far it has got (docs/imports.md, ADR 0022)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Collection, Mapping
from typing import Any

from kurz.auth.models import Principal
from kurz.imports.models import ImportRead, ImportReport, Outcome
from kurz.imports.sources import OnConflict

# The job kind that runs an import; its payload: {"import_id": id}.
JOB = "run-import"


class Imports:
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
    ) -> ImportRead:
        """A new import, queued: the file kept, a job enqueued (with `enqueue`; else the
        caller runs it, as `kurz import` does). Raises a Problem: 422 for an unknown kind,
        settings it refuses, a file missing or not wanted, a domain kurz does not serve,
        an owner who is not a user (only an admin may name one: 404 for anyone else);
        413 for a file over KURZ_IMPORT_MAX_BYTES."""
        raise NotImplementedError

    async def run(
        self, import_id: int, *, progress: Callable[[ImportRead], None] | None = None
    ) -> ImportRead:
        """Run the import from where it stopped to its end (the job's body, and
        `kurz import`'s): each page one transaction; `progress` after each. Ends
        finished, or failed with the error that stopped it (a SourceError; not raised)."""
        raise NotImplementedError

    async def resume(self, import_id: int, *, principal: Principal) -> ImportRead:
        """Enqueue the job again of an import left running by a process that died
        without a job (a `kurz import` killed); a no-op for an import with its job."""
        raise NotImplementedError

    async def get(self, import_id: int, *, principal: Principal) -> ImportRead:
        """The import; 404 unless it is the principal's (or the principal is an admin)."""
        raise NotImplementedError

    async def list(
        self, *, principal: Principal, after: int | None = None, limit: int = 50
    ) -> list[ImportRead]:
        """The principal's imports, newest first, ids below `after`."""
        raise NotImplementedError

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
        raise NotImplementedError
