"""The dashboard (/_/): what a signed-in user sees first."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from kurz.web.render import render
from kurz.web.viewer import PageRoute, ViewerDep

router = APIRouter(include_in_schema=False, route_class=PageRoute)


@router.get("/_/")
async def dashboard(request: Request, viewer: ViewerDep) -> Response:
    return render(request, "dashboard.html", title="Dashboard", nav="dashboard", wide=True)
