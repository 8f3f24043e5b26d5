"""Any other address under /_/: a page saying it is not there, not problem+json."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from kurz.web.render import message

router = APIRouter(include_in_schema=False)


@router.get("/_/{rest:path}")
async def missing(rest: str, request: Request) -> Response:
    return message(
        request,
        "Page not found",
        "kurz has no page at this address. Check it, or start from the dashboard.",
        404,
        more="",
        error=True,
    )
