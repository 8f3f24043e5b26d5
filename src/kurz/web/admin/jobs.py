"""Background jobs (/_/admin/jobs): the jobs in each state, dead ones first, with their
last error, and a retry for a dead one (kurz.jobs.JobStore, as `kurz jobs list` and
`kurz jobs retry` use it)."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import RedirectResponse

from kurz.auth.models import MAX_ID
from kurz.deps import part
from kurz.errors import not_found
from kurz.jobs import JobState, JobStore
from kurz.web.admin.guard import AdminDep
from kurz.web.render import render
from kurz.web.viewer import PageRoute

router = APIRouter(include_in_schema=False, route_class=PageRoute)
JobsDep = Annotated[JobStore, part("jobs")]
JobId = Annotated[int, Path(ge=1, le=MAX_ID)]

PAGE: Final = "/_/admin/jobs"
# The tabs, in the order an admin needs them.
STATES: Final = (JobState.DEAD, JobState.QUEUED, JobState.RUNNING, JobState.DONE)
SHOWN: Final = 50


async def _jobs_page(
    request: Request,
    jobs: JobStore,
    state: JobState,
    *,
    notice: str = "",
    error: str = "",
    status: int = 200,
) -> Response:
    counts = dict.fromkeys(STATES, 0)
    for (_queue, each), n in (await jobs.counts()).items():
        counts[each] += n
    return render(
        request,
        "admin/jobs.html",
        status,
        title="Background jobs",
        nav="admin",
        wide=True,
        state=state,
        counts=counts,
        jobs=await jobs.list(state=state, limit=SHOWN),
        shown=SHOWN,
        notice=notice,
        error=error,
    )


@router.get(PAGE)
async def jobs_page(
    request: Request,
    viewer: AdminDep,
    jobs: JobsDep,
    state: JobState = JobState.DEAD,
    retried: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    notice = ""
    if retried is not None:
        job = await jobs.get(retried)
        if job is not None:
            notice = f"Job {job.id} ({job.kind}) is queued again, with fresh attempts."
    return await _jobs_page(request, jobs, state, notice=notice)


@router.post(PAGE + "/{job_id}/retry")
async def retry_job(request: Request, job_id: JobId, viewer: AdminDep, jobs: JobsDep) -> Response:
    job = await jobs.get(job_id)
    if job is None:
        raise not_found(f"No job {job_id}.")
    if await jobs.retry(job_id):
        return RedirectResponse(f"{PAGE}?state=dead&retried={job_id}", 303)
    if job.state is JobState.DEAD:
        why = "another job with its unique key is queued or running already"
    else:
        why = f"it is {job.state.value}, not dead"
    error = f"Job {job_id} ({job.kind}) was not retried: {why}."
    return await _jobs_page(request, jobs, JobState.DEAD, error=error, status=409)
