"""/docs: Swagger UI over kurz's OpenAPI document, from the copy shipped inside kurz."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from kurz.web.render import render

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def explorer(request: Request) -> Response:
    return render(request, "docs.html", headers={"Cache-Control": "no-cache"})
