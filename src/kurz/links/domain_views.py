"""REST endpoints for domains (admins only): parse, call the service, render."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response

from kurz.auth.views import Admin
from kurz.deps import part
from kurz.links.domain_models import DomainCreate, DomainList, DomainRead, DomainUpdate
from kurz.links.domain_service import DomainAdmin
from kurz.openapi import AUTHENTICATED, TOO_LARGE, Answers, answer, problem, responses

PREFIX = "/api/v1/domains"
router = APIRouter(prefix=PREFIX, tags=["domains"])

DomainsDep = Annotated[DomainAdmin, part("domain_admin")]
_ADMIN_ONLY: Answers = {403: problem("The key (or its user's role) lacks the `admin` scope")}
_NO_DOMAIN: Answers = {404: problem("No such domain")}
_MALFORMED = problem("Malformed JSON or Content-Length")


@router.get(
    "",
    operation_id="listDomains",
    summary="List the domains, and name the default one",
    responses=responses({200: answer("Every domain")}, _ADMIN_ONLY, AUTHENTICATED, limited=True),
)
async def list_domains(_admin: Admin, domains: DomainsDep) -> DomainList:
    return await domains.list_()


@router.post(
    "",
    status_code=201,
    operation_id="createDomain",
    summary="Add a domain kurz answers for",
    response_model=DomainRead,
    responses=responses(
        {
            201: answer("The new domain"),
            400: _MALFORMED,
            409: problem("A domain of this host exists, or it is the default (`domain-taken`)"),
            422: problem("A field failed validation (a host that cannot be one, a bad URL)"),
        },
        _ADMIN_ONLY,
        TOO_LARGE,
        AUTHENTICATED,
        limited=True,
    ),
)
async def create_domain(domain_in: DomainCreate, _admin: Admin, domains: DomainsDep) -> DomainRead:
    return await domains.create(domain_in)


@router.patch(
    "/{host}",
    operation_id="updateDomain",
    summary="Change a domain's scheme or redirects",
    responses=responses(
        {
            200: answer("The changed domain"),
            400: _MALFORMED,
            422: problem("A field failed validation"),
        },
        _NO_DOMAIN,
        _ADMIN_ONLY,
        TOO_LARGE,
        AUTHENTICATED,
        limited=True,
    ),
)
async def update_domain(
    host: str, domain_in: DomainUpdate, _admin: Admin, domains: DomainsDep
) -> DomainRead:
    return await domains.update(host, domain_in)


@router.delete(
    "/{host}",
    status_code=204,
    operation_id="deleteDomain",
    summary="Remove a domain that has no live links",
    responses=responses(
        {
            204: answer("Removed"),
            409: problem("The domain has live links (`domain-in-use`)"),
        },
        _NO_DOMAIN,
        _ADMIN_ONLY,
        AUTHENTICATED,
        limited=True,
    ),
)
async def delete_domain(host: str, _admin: Admin, domains: DomainsDep) -> Response:
    await domains.delete(host)
    return Response(status_code=204)
