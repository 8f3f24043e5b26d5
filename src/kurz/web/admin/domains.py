"""Domains (/_/admin/domains): the hosts kurz answers for besides KURZ_BASE_URL's, and
where their visitors go instead of kurz's own pages; added, changed and removed over
kurz.links.domain_service.DomainAdmin as /api/v1/domains calls it."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from kurz.deps import part
from kurz.errors import Problem, not_found
from kurz.links.domain_models import DomainCreate, DomainRead, DomainUpdate
from kurz.links.domain_service import DomainAdmin
from kurz.links.hosts import normalize_host
from kurz.web.admin.guard import AdminDep
from kurz.web.forms import Posted, as_problem, beside_fields, posted
from kurz.web.render import render
from kurz.web.viewer import PageRoute

router = APIRouter(include_in_schema=False, route_class=PageRoute)
DomainsDep = Annotated[DomainAdmin, part("domain_admin")]

PAGE: Final = "/_/admin/domains"
# The redirects a domain may have, and what each is for.
REDIRECTS: Final = (
    ("root_redirect", "Root redirect", "Where a visit of / goes."),
    ("not_found_redirect", "Not-found redirect", "Where a visit of an unknown code goes."),
    ("expired_redirect", "Expired redirect", "Where a visit of an expired link goes."),
    ("used_up_redirect", "Used-up redirect", "Where a visit of a used-up link goes."),
)
_FIELDS: Final = ("host", "https", *(name for name, _label, _hint in REDIRECTS))
Done = Literal["added", "changed", "removed"]
_DONE: Final[dict[Done, str]] = {
    "added": "The domain is added: point its DNS at kurz, and its links work.",
    "changed": "The domain is changed.",
    "removed": "The domain is removed.",
}


def _sent(form: Posted, *, host: bool) -> dict[str, str]:
    """The form's fields as they were sent, to show them again."""
    names = _FIELDS if host else _FIELDS[1:]
    values = {name: form.first(name).strip() for name in names}
    values["https"] = "false" if values["https"] == "false" else "true"
    return values


def _body(values: dict[str, str]) -> dict[str, object]:
    """The API's body for the form: an empty redirect is none."""
    body: dict[str, object] = {name: value or None for name, value in values.items()}
    body["https"] = values["https"] == "true"
    return body


def _errors(problem: Problem) -> dict[str, str]:
    return beside_fields(problem, _FIELDS) or {"host": problem.detail}


async def _domains_page(
    request: Request,
    domains: DomainAdmin,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    notice: str = "",
    status: int = 200,
) -> Response:
    listed = await domains.list_()
    return render(
        request,
        "admin/domains.html",
        status,
        title="Domains",
        nav="admin",
        wide=True,
        domains=listed.items,
        default=listed.default,
        redirects=REDIRECTS,
        values=values or {"https": "true"},
        errors=errors or {},
        notice=notice,
    )


@router.get(PAGE)
async def domains_page(
    request: Request, viewer: AdminDep, domains: DomainsDep, done: Done | None = None
) -> Response:
    return await _domains_page(request, domains, notice=_DONE[done] if done else "")


@router.post(PAGE)
async def add_domain(request: Request, viewer: AdminDep, domains: DomainsDep) -> Response:
    values = _sent(await posted(request), host=True)
    try:
        await domains.create(DomainCreate.model_validate(_body(values)))
    except (ValidationError, Problem) as exc:
        problem = as_problem(exc) if isinstance(exc, ValidationError) else exc
        if problem.status not in {409, 422}:
            raise
        return await _domains_page(
            request, domains, values=values, errors=_errors(problem), status=problem.status
        )
    return RedirectResponse(f"{PAGE}?done=added", 303)


async def _domain(domains: DomainAdmin, host: str) -> DomainRead:
    named = normalize_host(host) or host
    for domain in (await domains.list_()).items:
        if domain.host == named:
            return domain
    raise not_found(f"No domain '{host[:260]}'.")


def _edit_page(
    request: Request,
    domain: DomainRead,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "admin/domain.html",
        status,
        title=f"Domain {domain.host}",
        nav="admin",
        domain=domain,
        redirects=REDIRECTS,
        values=values,
        errors=errors or {},
    )


@router.get(PAGE + "/{host}")
async def edit_page(request: Request, host: str, viewer: AdminDep, domains: DomainsDep) -> Response:
    domain = await _domain(domains, host)
    values = {name: getattr(domain, name) or "" for name, _label, _hint in REDIRECTS}
    values["https"] = "true" if domain.https else "false"
    return _edit_page(request, domain, values)


@router.post(PAGE + "/{host}")
async def change_domain(
    request: Request, host: str, viewer: AdminDep, domains: DomainsDep
) -> Response:
    domain = await _domain(domains, host)
    values = _sent(await posted(request), host=False)
    try:
        await domains.update(domain.host, DomainUpdate.model_validate(_body(values)))
    except (ValidationError, Problem) as exc:
        problem = as_problem(exc) if isinstance(exc, ValidationError) else exc
        if problem.status != 422:
            raise
        return _edit_page(request, domain, values, _errors(problem), problem.status)
    return RedirectResponse(f"{PAGE}?done=changed", 303)


def _remove_page(
    request: Request, domain: DomainRead, error: str = "", status: int = 200
) -> Response:
    return render(
        request,
        "admin/domain_remove.html",
        status,
        title=f"Remove {domain.host}",
        nav="admin",
        domain=domain,
        error=error,
    )


@router.get(PAGE + "/{host}/remove")
async def remove_page(
    request: Request, host: str, viewer: AdminDep, domains: DomainsDep
) -> Response:
    return _remove_page(request, await _domain(domains, host))


@router.post(PAGE + "/{host}/remove")
async def remove_domain(
    request: Request, host: str, viewer: AdminDep, domains: DomainsDep
) -> Response:
    domain = await _domain(domains, host)
    try:
        await domains.delete(domain.host)
    except Problem as problem:
        if problem.status != 409:
            raise
        return _remove_page(request, domain, problem.detail, 409)
    return RedirectResponse(f"{PAGE}?done=removed", 303)
