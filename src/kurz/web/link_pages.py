"""One link's pages: create (/_/new), its page, edit, and delete.

They call the use cases the REST routes call, with the signed-in user as the principal:
the form is read into the API's own LinkCreate or LinkUpdate, and the API's errors are
shown beside the fields they name. An edit is sent with the version the form was filled
from, as If-Match; when someone changed the link first, both versions are shown to
choose from, never overwritten silently.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from kurz.auth.models import Principal
from kurz.deps import part
from kurz.errors import Problem
from kurz.idempotency.store import IN_FLIGHT
from kurz.links.conditions import TargetingRule
from kurz.links.domain_service import DomainAdmin
from kurz.links.models import LinkCreate, LinkRead, LinkUpdate
from kurz.links.queries import Versions
from kurz.links.service import Links
from kurz.web.forms import posted
from kurz.web.link_changes import changes, compared
from kurz.web.link_form import (
    KEPT,
    RULES_EXAMPLE,
    LinkForm,
    checked,
    create_body,
    filled,
    typed,
    update_body,
    with_errors,
)
from kurz.web.render import message, render
from kurz.web.viewer import PageRoute, ViewerDep

router = APIRouter(include_in_schema=False, route_class=PageRoute)

LinksDep = Annotated[Links, part("links")]
DomainsDep = Annotated[DomainAdmin, part("domain_admin")]
# A link on another domain than the default: its host (as the API's ?domain=).
DomainQuery = Annotated[str | None, Query(max_length=300)]

NEW = "/_/new"
QR_SIZE = 240
NOTICES = {
    "created": "The link is made. Copy its short URL below.",
    "saved": "Your changes are saved.",
}


def page_of(link: LinkRead, default_host: str, part_: str = "", **query: str) -> str:
    """The address of a link's page (or of `part_` of it: /edit, /delete, /stats)."""
    params = {}
    if link.domain and link.domain != default_host:
        params["domain"] = link.domain
    params |= query
    return f"/_/links/{link.code}{part_}" + (f"?{urlencode(params)}" if params else "")


def _one_time_key(text: str) -> str | None:
    """The form's Idempotency-Key: a UUID, else none (the form is then posted unkeyed)."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def _version(text: str) -> Versions:
    """The version a form was filled from, as If-Match names it."""
    if not text.isdigit() or len(text) > 9:
        raise Problem(
            400,
            "bad-request",
            "Bad request",
            "The form does not say which version of the link it was filled from. "
            "Open the link's page again and start over.",
        )
    return Versions(frozenset({int(text)}))


async def _domains(domains: DomainAdmin) -> list[str]:
    """The hosts a link may go on, the default first."""
    found = await domains.list_()
    return [found.default, *(item.host for item in found.items if item.host != found.default)]


async def _form_page(
    request: Request,
    form: LinkForm,
    *,
    status: int = 200,
    link: LinkRead | None = None,
    version: int | None = None,
    domains: list[str] | None = None,
    default_host: str = "",
) -> Response:
    """The create form, or (with `link`) the edit form, filled from `form`."""
    editing = link is not None
    return render(
        request,
        "links/form.html",
        status,
        title=f"Edit {link.short_url}" if link is not None else "New link",
        nav="links" if editing else "new",
        form=form,
        link=link,
        action=page_of(link, default_host, "/edit") if link is not None else NEW,
        cancel=page_of(link, default_host) if link is not None else "/_/links",
        version=version,
        domains=domains or [],
        idempotency_key=str(uuid.uuid4()),
        rules_example=RULES_EXAMPLE,
    )


@router.get(NEW)
async def new_link_page(request: Request, viewer: ViewerDep, domains: DomainsDep) -> Response:
    return await _form_page(request, LinkForm.empty(), domains=await _domains(domains))


@router.post(NEW)
async def create_link(
    request: Request, viewer: ViewerDep, links: LinksDep, domains: DomainsDep
) -> Response:
    sent = await posted(request)
    form = typed(sent)
    try:
        link_in = checked(LinkCreate, create_body(form))
        done = await links.create(
            principal=viewer.principal,
            link_in=link_in,
            key=_one_time_key(sent.first("idempotency_key")),
        )
    except Problem as problem:
        if problem.slug == IN_FLIGHT:
            return message(
                request,
                "Already being sent",
                "This form was sent twice, and the first is still being made into a link.",
                409,
                more="Your links list will show it in a moment.",
                error=True,
            )
        return await _form_page(
            request,
            with_errors(form, problem),
            status=problem.status,
            domains=await _domains(domains),
        )
    return RedirectResponse(page_of(done.value, links.default_host, created="1"), 303)


@router.get("/_/links/{code}")
async def link_page(
    code: str, request: Request, viewer: ViewerDep, links: LinksDep, domain: DomainQuery = None
) -> Response:
    link = await links.get(principal=viewer.principal, code=code, domain=domain)
    used = None
    if link.max_visits is not None:
        used = await links.visits(principal=viewer.principal, code=code, domain=domain)
    notices = [text for name, text in NOTICES.items() if request.query_params.get(name) == "1"]
    return render(
        request,
        "links/show.html",
        title=f"Link {link.code}",
        nav="links",
        link=link,
        used=used,
        notices=notices,
        qr={"size": QR_SIZE, **{kind: _qr(link, links, kind) for kind in ("svg", "png")}},
        edit=page_of(link, links.default_host, "/edit"),
        delete=page_of(link, links.default_host, "/delete"),
        stats=page_of(link, links.default_host, "/stats"),
        when=when,
        describe=described,
    )


def _qr(link: LinkRead, links: Links, kind: str) -> str:
    """The API's QR code of the link (the session cookie works there too)."""
    query = {"format": kind, "size": str(QR_SIZE)}
    if link.domain and link.domain != links.default_host:
        query["domain"] = link.domain
    return f"/api/v1/links/{link.code}/qr?{urlencode(query)}"


def when(moment: datetime | None) -> str:
    """An instant as the pages show it, in UTC."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def described(rule: TargetingRule) -> str:
    """A targeting rule's conditions in words."""
    said = []
    for condition in rule.conditions:
        fields = condition.model_dump(mode="json", by_alias=True, exclude_none=True)
        kind = fields.pop("type")
        if "in" in fields:
            said.append(f"{kind} is {' or '.join(fields['in'])}")
        elif kind == "query":
            equals = f" = {fields['equals']}" if "equals" in fields else ""
            said.append(f"the query has {fields['param']}{equals}")
        else:
            span = [f"{key} {fields[key]}" for key in ("from", "until") if key in fields]
            said.append("the time is " + " ".join(span))
    return (" and " if rule.match == "all" else " or ").join(said)


@router.get("/_/links/{code}/edit")
async def edit_page(
    code: str, request: Request, viewer: ViewerDep, links: LinksDep, domain: DomainQuery = None
) -> Response:
    link = await links.get(principal=viewer.principal, code=code, domain=domain)
    return await _form_page(
        request, filled(link), link=link, version=link.version, default_host=links.default_host
    )


@router.post("/_/links/{code}/edit")
async def edit(
    code: str, request: Request, viewer: ViewerDep, links: LinksDep, domain: DomainQuery = None
) -> Response:
    sent = await posted(request)
    form = typed(sent)
    based_on = _version(sent.first("version"))
    link = await links.get(principal=viewer.principal, code=code, domain=domain)
    mine: LinkUpdate | None = None
    try:
        mine = checked(LinkUpdate, update_body(form))
        await links.update(
            principal=viewer.principal,
            code=code,
            link_in=changes(mine, link),
            versions=based_on,
            key=None,
            domain=domain,
        )
    except Problem as problem:
        if problem.status == 412 and mine is not None:
            return await _conflict(request, viewer.principal, links, form, mine, code, domain)
        version = next(iter(based_on.allowed or ()), link.version)
        return await _form_page(
            request,
            with_errors(form, problem),
            status=problem.status,
            link=link,
            version=version,
            default_host=links.default_host,
        )
    return RedirectResponse(page_of(link, links.default_host, saved="1"), 303)


async def _conflict(
    request: Request,
    principal: Principal,
    links: Links,
    form: LinkForm,
    mine: LinkUpdate,
    code: str,
    domain: str | None,
) -> Response:
    """Someone changed the link since the form was filled: both versions, to choose from.
    When they already say the same (the form was sent twice), the edit is done."""
    now = await links.get(principal=principal, code=code, domain=domain)
    rows = compared(mine, now)
    if not any(row.differs for row in rows):
        return RedirectResponse(page_of(now, links.default_host, saved="1"), 303)
    return render(
        request,
        "links/conflict.html",
        412,
        title=f"Edit {now.short_url}",
        nav="links",
        link=now,
        rows=rows,
        form=form,
        kept=KEPT,
        action=page_of(now, links.default_host, "/edit"),
        theirs=page_of(now, links.default_host),
    )


@router.get("/_/links/{code}/delete")
async def delete_page(
    code: str, request: Request, viewer: ViewerDep, links: LinksDep, domain: DomainQuery = None
) -> Response:
    link = await links.get(principal=viewer.principal, code=code, domain=domain)
    return _delete_page(request, link, links)


def _delete_page(
    request: Request, link: LinkRead, links: Links, *, changed: bool = False
) -> Response:
    return render(
        request,
        "links/delete.html",
        412 if changed else 200,
        title=f"Delete {link.short_url}?",
        nav="links",
        link=link,
        changed=changed,
        action=page_of(link, links.default_host, "/delete"),
        cancel=page_of(link, links.default_host),
    )


@router.post("/_/links/{code}/delete")
async def delete(
    code: str, request: Request, viewer: ViewerDep, links: LinksDep, domain: DomainQuery = None
) -> Response:
    sent = await posted(request)
    version = sent.first("version")
    versions = _version(version) if version else Versions.any()
    try:
        await links.delete(principal=viewer.principal, code=code, versions=versions, domain=domain)
    except Problem as problem:
        if problem.status != 412:
            raise
        now = await links.get(principal=viewer.principal, code=code, domain=domain)
        return _delete_page(request, now, links, changed=True)
    return RedirectResponse("/_/links?done=deleted&n=1", 303)
