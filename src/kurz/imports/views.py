"""REST endpoints for imports: parse (JSON, or a form with its file), call
kurz.imports.service, render."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from kurz.auth.models import MAX_ID
from kurz.auth.views import LinksRead, LinksWrite, SettingsDep
from kurz.deps import part
from kurz.imports.models import (
    ImportCreate,
    ImportPagination,
    ImportRead,
    ImportReport,
    Outcome,
)
from kurz.imports.service import Imports
from kurz.imports.sources import ON_CONFLICT
from kurz.imports.uploads import (
    FORMS,
    JSON,
    FormsClosed,
    Sent,
    from_form,
    from_json,
    media_type,
    pieces,
)
from kurz.imports.uploads import unsupported as unsupported_media
from kurz.openapi import AUTHENTICATED, answer, needs_scope, problem, responses

PREFIX = "/api/v1/imports"
router = APIRouter(prefix=PREFIX, tags=["imports"], route_class=FormsClosed)

ImportsDep = Annotated[Imports, part("imports")]
ImportId = Annotated[int, Path(ge=1, le=MAX_ID, description="The import's id.", examples=[3])]

_NOT_FOUND = {404: problem("No such import, or not the caller's")}
_MALFORMED_ID = {422: problem("An id that is not a number")}

DESCRIPTION = """
Start an import of links (and their statistics) from another shortener or a file; it
runs in the background, a page of links at a time (docs/imports.md). The answer is the
import, queued; follow it at its `Location` (`status`, `read` of `total`, the counts)
and read its report at `/report` (each link read, and what became of it).

- A file (`csv`, `bitly-csv`, `shlink-csv`, `kurz`): `multipart/form-data`, the file in
  the `file` field, beside `source` and the other fields: up to KURZ_IMPORT_MAX_BYTES
  (64 MiB by default).
- An API or a database (`bitly`, `kutt-api`, `shlink`, `yourls`, `kutt`): JSON, with
  the source's `settings`; or a form, each setting a field of its own.

A link imported before from the same source (its id there) is skipped, so an import
may be run again.
"""

_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["source"],
    "properties": {
        "source": {"type": "string", "description": "The source kind."},
        "file": {
            "type": "string",
            "format": "binary",
            "description": "The file, for a kind that reads one.",
        },
        "on_conflict": {"type": "string", "enum": list(ON_CONFLICT), "default": "skip"},
        "domain": {"type": "string"},
        "owner": {"type": "string", "description": "An admin's only: whose links they are."},
    },
    "additionalProperties": {
        "type": "string",
        "description": "The source's settings, a field each (`token`, `api_url`, ...).",
    },
}
_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            JSON: {"schema": ImportCreate.model_json_schema()},
            "multipart/form-data": {"schema": _FORM_SCHEMA},
        },
    }
}


async def sent_import(request: Request, *, json_limit: int) -> Sent:
    """What the request asks to import: JSON, or a form (its file kept on disk)."""
    found = media_type(request)
    if found == JSON:
        return await from_json(request, json_limit)
    if found in FORMS:
        return from_form(await request.form(max_files=1))
    raise unsupported_media(found)


@router.post(
    "",
    status_code=202,
    operation_id="createImport",
    summary="Import links from another shortener or a file (runs in the background)",
    description=DESCRIPTION,
    response_model=ImportRead,
    openapi_extra=_BODY,
    responses=responses(
        {
            202: answer("Queued: the import", "Location"),
            400: problem("Malformed JSON, form or Content-Length"),
            413: problem(
                "The file is over KURZ_IMPORT_MAX_BYTES, or a JSON body over KURZ_MAX_BODY_BYTES"
            ),
            415: problem("A body neither JSON nor a form"),
            422: problem(
                "An unknown source, settings it refuses, a file missing or not wanted, a "
                "domain kurz does not serve, an `owner` who is no user (or named by a "
                "caller who is no admin)"
            ),
        },
        needs_scope("links:write"),
        AUTHENTICATED,
        limited=True,
    ),
)
async def create_import(
    request: Request, principal: LinksWrite, imports: ImportsDep, settings: SettingsDep
) -> Response:
    sent = await sent_import(request, json_limit=settings.max_body_bytes)
    import_in, upload = sent.import_in, sent.file
    started = await imports.start(
        principal=principal,
        kind=import_in.source,
        settings=import_in.settings,
        file=None if upload is None else pieces(upload),
        filename=None if upload is None else upload.filename,
        on_conflict=import_in.on_conflict,
        domain=import_in.domain,
        owner=import_in.owner,
    )
    return Response(
        started.model_dump_json().encode(),
        202,
        {"Location": f"{PREFIX}/{started.id}"},
        media_type="application/json",
    )


@router.get(
    "",
    operation_id="listImports",
    summary="List the caller's imports, newest first",
    responses=responses(
        {200: answer("A page of imports"), 422: problem("A malformed limit or `after`")},
        needs_scope("links:read"),
        AUTHENTICATED,
        limited=True,
    ),
)
async def list_imports(
    principal: LinksRead,
    imports: ImportsDep,
    after: Annotated[
        int | None,
        Query(ge=1, le=MAX_ID, description="A previous page's `next_after`: imports before it."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ImportPagination:
    found = await imports.list(principal=principal, after=after, limit=limit + 1)
    page = found[:limit]
    return ImportPagination(items=page, next_after=page[-1].id if len(found) > limit else None)


@router.get(
    "/{import_id}",
    operation_id="getImport",
    summary="Get an import: how far it has got, and its counts",
    responses=responses(
        {200: answer("The import")},
        _NOT_FOUND,
        _MALFORMED_ID,
        needs_scope("links:read"),
        AUTHENTICATED,
        limited=True,
    ),
)
async def get_import(import_id: ImportId, principal: LinksRead, imports: ImportsDep) -> ImportRead:
    return await imports.get(import_id, principal=principal)


@router.get(
    "/{import_id}/report",
    operation_id="getImportReport",
    summary="An import's report: each link read, and what became of it, in order",
    responses=responses(
        {
            200: answer("Rows of the report"),
            422: problem("A malformed id, `after`, `limit` or `outcome`"),
        },
        _NOT_FOUND,
        needs_scope("links:read"),
        AUTHENTICATED,
        limited=True,
    ),
)
async def get_report(
    import_id: ImportId,
    principal: LinksRead,
    imports: ImportsDep,
    after: Annotated[
        int, Query(ge=0, le=MAX_ID, description="A previous page's `next_after`: rows after it.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
    outcome: Annotated[
        list[Outcome] | None, Query(description="Only rows with this outcome; repeat for more.")
    ] = None,
) -> ImportReport:
    return await imports.report(
        import_id, principal=principal, after=after, limit=limit, outcomes=outcome
    )
