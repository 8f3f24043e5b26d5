"""Acting on several links of the list at once (POST /_/links): delete them, after
a page that lists them asks to confirm, or add or remove a tag. Each link goes through
the same use cases as one link's own page; one that fails (gone meanwhile, or never the
viewer's) is reported on the result page and the others are done."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from kurz.errors import Problem
from kurz.links.hosts import MAX_HOST_LENGTH
from kurz.links.models import MAX_TAGS, LinkRead, LinkUpdate
from kurz.links.queries import Versions
from kurz.links.service import Links
from kurz.links.urls import validate_tag
from kurz.web.forms import posted
from kurz.web.links_list import LIST, LinksDep, bad_query
from kurz.web.render import render
from kurz.web.viewer import PageRoute, Viewer, ViewerDep, safe_next

router = APIRouter(include_in_schema=False, route_class=PageRoute)

BULK: Final = LIST
MAX_BULK: Final = 100
# Each action, and the word the list's notice (kurz.web.links_list.NOTICES) says it by.
ACTIONS: Final = {"delete": "deleted", "tag": "tagged", "untag": "untagged"}
# Tags are read and written back at their version; a link changed in between is read
# again, this many times.
_TRIES: Final = 3
_MAX_BACK: Final = 4_000


@dataclass(frozen=True, slots=True)
class Picked:
    """A link the form named: its host (empty: the default domain) and code."""

    host: str
    code: str

    @property
    def value(self) -> str:
        return f"{self.host}/{self.code}"

    @property
    def domain(self) -> str | None:
        return self.host or None


@dataclass(frozen=True, slots=True)
class Outcome:
    picked: Picked
    link: LinkRead | None = None
    # Why it was not done; empty when it was.
    error: str = ""


def parse_picked(values: list[str]) -> list[Picked]:
    """The links the form named, each once, in order; a 400 page for a malformed one or
    more than MAX_BULK."""
    found: dict[str, Picked] = {}
    for value in values:
        host, slash, code = value.rpartition("/")
        if not slash or not code or len(host) > MAX_HOST_LENGTH + 8 or len(code) > 200:
            raise bad_query("The form named a link it cannot have listed.")
        found.setdefault(value, Picked(host, code))
    if len(found) > MAX_BULK:
        raise bad_query(f"Act on at most {MAX_BULK} links at once.")
    return list(found.values())


def back_of(sent: str) -> str:
    """The list, with its filters, to go back to: only an address of the list itself."""
    on_list = sent == LIST or sent.startswith(LIST + "?")
    ok = on_list and safe_next(sent) and len(sent) <= _MAX_BACK and sent.isprintable()
    return sent if ok and " " not in sent else LIST


def with_notice(back: str, done: str, count: int) -> str:
    path, _, query = back.partition("?")
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in {"done", "n"}]
    return f"{path}?{urlencode([*kept, ('done', done), ('n', str(count))])}"


def why(problem: Problem) -> str:
    if problem.status == 404:
        return "Not found: deleted already, or not one of yours."
    return problem.detail


async def _look(links: Links, viewer: Viewer, picked: Picked) -> Outcome:
    try:
        link = await links.get(principal=viewer.principal, code=picked.code, domain=picked.domain)
    except Problem as problem:
        return Outcome(picked, error=why(problem))
    return Outcome(picked, link)


async def _delete(links: Links, viewer: Viewer, picked: Picked) -> Outcome:
    try:
        await links.delete(
            principal=viewer.principal,
            code=picked.code,
            versions=Versions.any(),
            domain=picked.domain,
        )
    except Problem as problem:
        return Outcome(picked, error=why(problem))
    return Outcome(picked)


def _retagged(tags: list[str], tag: str, *, add: bool) -> list[str]:
    if add:
        return tags if tag in tags else [*tags, tag]
    return [other for other in tags if other != tag]


async def _retag(links: Links, viewer: Viewer, picked: Picked, tag: str, *, add: bool) -> Outcome:
    """The link with `tag` added or removed, written at the version its tags were read
    at, so that a concurrent edit of its tags is never overwritten."""
    for _ in range(_TRIES):
        seen = await _look(links, viewer, picked)
        if seen.link is None:
            return seen
        tags = _retagged(seen.link.tags, tag, add=add)
        if tags == seen.link.tags:
            return seen
        if len(tags) > MAX_TAGS:
            return Outcome(picked, seen.link, f"It has {MAX_TAGS} tags already.")
        try:
            done = await links.update(
                principal=viewer.principal,
                code=picked.code,
                link_in=LinkUpdate(tags=tags),
                versions=Versions(frozenset({seen.link.version})),
                key=None,
                domain=picked.domain,
            )
        except Problem as problem:
            if problem.status == 412:
                continue
            return Outcome(picked, seen.link, why(problem))
        return Outcome(picked, done.value)
    return Outcome(picked, error="It kept changing meanwhile; try again.")


def _tag_of(sent: str) -> str:
    if not sent.strip():
        raise bad_query("Write the tag to add or remove in the Tag field.")
    try:
        return validate_tag(sent)
    except ValueError as exc:
        raise bad_query(f"The tag {exc}.") from None


@router.post(BULK)
async def bulk(request: Request, viewer: ViewerDep, links: LinksDep) -> Response:
    form = await posted(request)
    back = back_of(form.first("back"))
    action = form.first("action")
    if action not in ACTIONS:
        raise bad_query("Choose Delete, Add tag or Remove tag.")
    picked = parse_picked(form.all("link"))
    if not picked:
        return RedirectResponse(with_notice(back, "none", 0), 303)
    tag = ""
    if action == "delete" and form.first("confirm") != "1":
        seen = [await _look(links, viewer, one) for one in picked]
        return render(
            request, "links/bulk_confirm.html", title="Delete links?", nav="links",
            outcomes=seen, back=back,
        )  # fmt: skip
    if action == "delete":
        outcomes = [await _delete(links, viewer, one) for one in picked]
    else:
        tag = _tag_of(form.first("tag"))
        outcomes = [await _retag(links, viewer, one, tag, add=action == "tag") for one in picked]
    failed = [outcome for outcome in outcomes if outcome.error]
    if not failed:
        return RedirectResponse(with_notice(back, ACTIONS[action], len(outcomes)), 303)
    return render(
        request, "links/bulk_result.html", title="Some links were not changed", nav="links",
        action=action, tag=tag, done=len(outcomes) - len(failed), failed=failed, back=back,
    )  # fmt: skip
