"""GET /api/v1/export: the caller's links (an admin's: every link), streamed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from kurz.auth.views import LinksRead
from kurz.deps import part
from kurz.exports.models import ExportFormat
from kurz.exports.service import MEDIA_TYPES, Exports
from kurz.openapi import AUTHENTICATED, answer, needs_scope, problem, responses

router = APIRouter(tags=["export"])
ExportsDep = Annotated[Exports, part("exports")]

DESCRIPTION = """
The caller's live links, or for an admin every link, deleted ones (tombstones) included,
made a page at a time while the response is sent: no size is known in advance, and
memory stays flat however many links there are.

- `format=jsonl` (the default): the kurz format, version 1 (docs/export.md,
  docs/export.schema.json): a header line, a line per link with every field, then its
  statistics (daily and hourly totals, daily breakdowns) when the key also has
  `stats:read`, and an `end` line with the counts. A file without its `end` line was
  cut short.
- `format=csv`: the live links only, one row each (RFC 4180, UTF-8, a header row);
  tags in one cell, separated by line feeds.
"""

_OK: dict[str, Any] = {
    **answer("The export, as an attachment"),
    "headers": {
        "Content-Disposition": {
            "description": '`attachment; filename="kurz-export-20260101T120000Z.jsonl"` '
            "(or `.csv`): when it was made, in UTC.",
            "schema": {"type": "string"},
        }
    },
    "content": {
        MEDIA_TYPES["jsonl"]: {"schema": {"type": "string"}},
        MEDIA_TYPES["csv"]: {"schema": {"type": "string"}},
    },
}


@router.get(
    "/api/v1/export",
    operation_id="exportLinks",
    summary="Export links and their statistics (JSON Lines or CSV)",
    description=DESCRIPTION,
    response_class=StreamingResponse,
    responses=responses(
        {200: _OK, 422: problem("A format other than jsonl or csv")},
        needs_scope("links:read"),
        AUTHENTICATED,
        limited=True,
    ),
)
async def export_links(
    principal: LinksRead,
    exports: ExportsDep,
    export_format: Annotated[
        ExportFormat, Query(alias="format", description="`jsonl` (the default) or `csv`.")
    ] = "jsonl",
) -> StreamingResponse:
    export = exports.open(
        export_format=export_format,
        user_id=None if principal.is_admin else principal.user_id,
        statistics="stats:read" in principal.scopes,
    )
    await export.begin()
    return StreamingResponse(
        aiter(export),
        media_type=export.media_type,
        headers={"Content-Disposition": f'attachment; filename="{export.filename}"'},
    )
