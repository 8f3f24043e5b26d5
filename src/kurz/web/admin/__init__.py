"""The admin pages under /_/admin: users, domains, background jobs and the system's
state, each over the use cases its REST routes or `kurz` commands call. Only an admin
finds them (kurz.web.admin.guard)."""

from fastapi import APIRouter

from kurz.web.admin import domains, index, jobs, system, users

router = APIRouter()
for _pages in (index, users, domains, jobs, system):
    router.include_router(_pages.router)
