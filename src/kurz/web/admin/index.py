"""The admin index (/_/admin): where each admin page is, and what needs a look."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from kurz.deps import part
from kurz.jobs import JobState, JobStore
from kurz.web.admin.guard import AdminDep
from kurz.web.render import render
from kurz.web.viewer import PageRoute

router = APIRouter(include_in_schema=False, route_class=PageRoute)
JobsDep = Annotated[JobStore, part("jobs")]


@router.get("/_/admin")
async def admin_index(request: Request, viewer: AdminDep, jobs: JobsDep) -> Response:
    counts = await jobs.counts()
    dead = sum(n for (_queue, state), n in counts.items() if state is JobState.DEAD)
    return render(request, "admin/index.html", title="Admin", nav="admin", dead=dead)
