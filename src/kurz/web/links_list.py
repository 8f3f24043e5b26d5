"""The links list (/_/links): the viewer's links (an admin's: everyone's), found by a GET
form that works without JavaScript, in keyset pages of 50. With htmx, the search field
refreshes only the results (the `_table.html` partial) as the person types."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from starlette.datastructures import QueryParams

from kurz.deps import part
from kurz.errors import Problem
from kurz.links.domain_service import DomainAdmin
from kurz.links.hosts import MAX_HOST_LENGTH, normalize_host
from kurz.links.models import MAX_TAGS, LinkPagination, LinkRead
from kurz.links.service import Links
from kurz.links.urls import validate_tag
from kurz.web.render import render
from kurz.web.viewer import PageRoute, Viewer, ViewerDep

router = APIRouter(include_in_schema=False, route_class=PageRoute)
LinksDep = Annotated[Links, part("links")]
DomainAdminDep = Annotated[DomainAdmin, part("domain_admin")]

LIST: Final = "/_/links"
PAGE: Final = 50
MAX_Q: Final = 200
MAX_CURSOR: Final = 64
SORTS: Final = {"newest": "Newest first", "oldest": "Oldest first", "code": "Code A\u2013Z"}
DEFAULT_SORT: Final = "newest"
# What a bulk action left for the list to say (?done=...&n=...): kurz's own sentences,
# never text from the address.
NOTICES: Final = {
    "deleted": "Deleted {n} link(s).",
    "tagged": "Added the tag to {n} link(s).",
    "untagged": "Removed the tag from {n} link(s).",
    "none": "Select at least one link first.",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Filters:
    """What the list is narrowed to and how it is ordered, as the query asked."""

    q: str = ""
    tags: list[str] = field(default_factory=list)
    # A host in its one form (kurz.links.hosts); empty: every domain.
    domain: str = ""
    sort: str = DEFAULT_SORT

    @property
    def active(self) -> bool:
        """Whether anything narrows the list (the sort does not)."""
        return bool(self.q or self.tags or self.domain)

    def url(self, cursor: str | None = None) -> str:
        """The list's address with these filters (and a page's cursor)."""
        params = [("q", self.q)] if self.q else []
        params += [("tag", tag) for tag in self.tags]
        if self.domain:
            params.append(("domain", self.domain))
        if self.sort != DEFAULT_SORT:
            params.append(("sort", self.sort))
        if cursor:
            params.append(("cursor", cursor))
        return LIST + ("?" + urlencode(params) if params else "")


def bad_query(detail: str) -> Problem:
    return Problem(400, "bad-request", "Bad Request", detail)


def parse_filters(query: QueryParams) -> Filters:
    """The filters in the list's query; a 400 page for any it cannot take."""
    q = query.get("q", "").strip()
    if len(q) > MAX_Q:
        raise bad_query(f"A search is at most {MAX_Q} characters.")
    if _CONTROL.search(q):
        raise bad_query("A search cannot hold control characters.")
    tags: list[str] = []
    for sent in query.getlist("tag"):
        if not sent.strip():
            continue  # the form's empty "add a tag" field
        try:
            tag = validate_tag(sent)
        except ValueError as exc:
            raise bad_query(f"A tag {exc}.") from None
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise bad_query(f"Filter by at most {MAX_TAGS} tags.")
    domain = query.get("domain", "").strip()
    if domain:
        normal = normalize_host(domain) if len(domain) <= MAX_HOST_LENGTH + 8 else None
        if normal is None:
            raise bad_query("The domain is not a host name.")
        domain = normal
    sort = query.get("sort") or DEFAULT_SORT
    if sort not in SORTS:
        raise bad_query(f"Sort by one of: {', '.join(SORTS)}.")
    return Filters(q=q, tags=tags, domain=domain, sort=sort)


def parse_cursor(query: QueryParams) -> str | None:
    cursor = query.get("cursor") or None
    if cursor is not None and len(cursor) > MAX_CURSOR:
        raise bad_query("The page's cursor is not one this list gave.")
    return cursor


async def _page_of(
    links: Links, viewer: Viewer, filters: Filters, cursor: str | None
) -> LinkPagination:
    """The page of links the filters ask for: every call of the list use case is here."""
    return await links.list_(
        principal=viewer.principal,
        limit=PAGE,
        cursor=cursor,
        tags=filters.tags,
        domain=filters.domain or None,
        q=filters.q or None,
        sort=filters.sort,
    )


def page_of_link(link: LinkRead, default_host: str) -> str:
    """The address of a link's own page (`?domain=` for a link on another domain)."""
    if link.domain is None or link.domain == default_host:
        return f"{LIST}/{link.code}"
    return f"{LIST}/{link.code}?{urlencode({'domain': link.domain})}"


def picked(link: LinkRead, default_host: str) -> str:
    """How a row's checkbox names its link for the bulk form: `<host>/<code>`, the host
    empty on the default domain."""
    host = "" if link.domain is None or link.domain == default_host else link.domain
    return f"{host}/{link.code}"


def notice(query: QueryParams) -> str:
    """What a bulk action left to say, from NOTICES only; empty if nothing."""
    text = NOTICES.get(query.get("done", ""), "")
    count = query.get("n", "0")
    if not text or not count.isascii() or not count.isdigit() or len(count) > 3:
        return ""
    return text.format(n=int(count))


@router.get(LIST)
async def links_list(
    request: Request, viewer: ViewerDep, links: LinksDep, domain_admin: DomainAdminDep
) -> Response:
    filters = parse_filters(request.query_params)
    cursor = parse_cursor(request.query_params)
    known = await domain_admin.list_()
    hosts = [known.default, *(domain.host for domain in known.items)]
    if filters.domain and filters.domain not in hosts:
        raise bad_query("kurz has no such domain.")
    page = await _page_of(links, viewer, filters, cursor)
    done = notice(request.query_params)
    context: dict[str, Any] = {
        "title": "Links",
        "nav": "links",
        "wide": True,
        "filters": filters,
        "sorts": SORTS,
        "hosts": hosts,
        "page": page,
        "cursor": cursor,
        "notice": done,
        "notice_error": done == NOTICES["none"],
        "back": filters.url(cursor),
        "page_of_link": lambda link: page_of_link(link, links.default_host),
        "picked": lambda link: picked(link, links.default_host),
        "tag_url": lambda tag: Filters(tags=[tag]).url(),
        "max_q": MAX_Q,
    }
    # htmx asks for the results alone, except when it restores a page from history.
    partial = (
        request.headers.get("hx-request") == "true"
        and request.headers.get("hx-history-restore-request") != "true"
    )
    template = "links/_table.html" if partial else "links/list.html"
    return render(request, template, headers={"Vary": "HX-Request"}, **context)
