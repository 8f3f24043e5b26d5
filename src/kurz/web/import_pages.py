"""The imports pages (/_/imports): the viewer's imports, choosing a source and starting
an import from it (a file, or what the source needs: an address, a token), and an
import's page, which follows its progress (htmx asks every 2 s while it runs) and shows
its report, failures first. The same use cases as /api/v1/imports
(kurz.imports.service); another user's import is a 404 page."""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Union, get_args, get_origin

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from kurz.auth.models import MAX_ID
from kurz.deps import part
from kurz.errors import Problem, not_found
from kurz.imports.models import ImportRead, ImportRow, Outcome
from kurz.imports.service import Imports
from kurz.imports.sources import ON_CONFLICT, SourceKind
from kurz.imports.uploads import FIELDS, FILE, from_form, pieces
from kurz.links.domain_service import DomainAdmin
from kurz.web.forms import beside_fields
from kurz.web.render import render
from kurz.web.viewer import PageRoute, Viewer, ViewerDep

router = APIRouter(include_in_schema=False, route_class=PageRoute)
ImportsDep = Annotated[Imports, part("imports")]
DomainAdminDep = Annotated[DomainAdmin, part("domain_admin")]
PAGE: Final = "/_/imports"
# Imports listed, and report rows shown at a time.
LISTED: Final = 100
SHOWN: Final = 100
OUTCOMES: Final[tuple[Outcome, ...]] = ("failed", "skipped", "renamed", "imported")
CONFLICT_HINTS: Final = {
    "skip": "Skip it (the report says so)",
    "rename": "Rename it: alias-2, alias-3, ...",
    "fail": "Fail it",
}


@dataclass(frozen=True, slots=True)
class Setting:
    """One of a source's settings, as its form shows it."""

    name: str
    label: str
    hint: str
    required: bool
    secret: bool
    # A yes or no (a select: a box left unticked would send nothing, its default).
    choice: bool = False
    # What it is when left empty, as text ("" when it has no default).
    default: str = ""


@dataclass(slots=True)
class ImportForm:
    """The new import's form as it was sent (or its defaults), and its errors by field."""

    kind: SourceKind
    values: dict[str, str] = field(default_factory=dict)
    on_conflict: str = "skip"
    domain: str = ""
    owner: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    error: str = ""

    @property
    def settings(self) -> list[Setting]:
        return [_setting(name, info) for name, info in self.kind.settings.model_fields.items()]


def _secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    if get_origin(annotation) in {Union, types.UnionType}:
        return any(_secret(arg) for arg in get_args(annotation))
    return False


def _setting(name: str, info: FieldInfo) -> Setting:
    default = "" if info.is_required() or info.default is None else info.default
    return Setting(
        name=name,
        label=info.title or name.replace("_", " ").capitalize(),
        hint=info.description or "",
        required=info.is_required(),
        secret=_secret(info.annotation),
        choice=info.annotation is bool,
        default=("true" if default else "false") if isinstance(default, bool) else str(default),
    )


def _size(n: int) -> str:
    return f"{n / (1 << 20):,.3g} MiB" if n >= 1 << 20 else f"{n / 1024:,.3g} KiB"


def _kinds(imports: Imports) -> list[SourceKind]:
    return sorted(imports.kinds.values(), key=lambda kind: kind.title.lower())


def _kind(imports: Imports, name: str) -> SourceKind:
    kind = imports.kinds.get(name)
    if kind is None:
        raise not_found(f"kurz cannot import from {name!r}: choose one of the sources listed.")
    return kind


def _title(imports: Imports, read: ImportRead) -> str:
    kind = imports.kinds.get(read.source)
    return kind.title if kind is not None else read.source


@router.get(PAGE)
async def imports_page(request: Request, viewer: ViewerDep, imports: ImportsDep) -> Response:
    found = await imports.list(principal=viewer.principal, limit=LISTED)
    return render(
        request,
        "imports/list.html",
        title="Imports",
        nav="imports",
        wide=True,
        imports=[(one, _title(imports, one)) for one in found],
        kinds=_kinds(imports),
    )


async def _form_page(
    request: Request,
    viewer: Viewer,
    imports: Imports,
    domain_admin: DomainAdmin,
    form: ImportForm,
    *,
    status: int = 200,
) -> Response:
    known = await domain_admin.list_()
    return render(
        request,
        "imports/new.html",
        status,
        title=f"Import from {form.kind.title}",
        nav="imports",
        form=form,
        kinds=_kinds(imports),
        hosts=[known.default, *(domain.host for domain in known.items)],
        conflicts=[(name, CONFLICT_HINTS[name]) for name in ON_CONFLICT],
        max_size=_size(imports.max_bytes),
        admin=viewer.is_admin,
    )


@router.get(PAGE + "/new")
async def new_import(
    request: Request,
    viewer: ViewerDep,
    imports: ImportsDep,
    domain_admin: DomainAdminDep,
    source: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    if not source:
        return RedirectResponse(PAGE, 303)
    form = ImportForm(_kind(imports, source))
    return await _form_page(request, viewer, imports, domain_admin, form)


@router.post(PAGE)
async def start_import(
    request: Request, viewer: ViewerDep, imports: ImportsDep, domain_admin: DomainAdminDep
) -> Response:
    # Read already, whole (its file on disk), by the CSRF check: this is the same form,
    # closed when the page is made (PageRoute).
    sent = await request.form(max_files=1)
    kind = _kind(imports, str(sent.get("source") or ""))
    values = {
        name: value
        for name, value in sent.multi_items()
        if isinstance(value, str) and name not in {*FIELDS, FILE}
    }
    names = kind.settings.model_fields
    form = ImportForm(
        kind,
        values={name: values.get(name, "") for name in names},
        on_conflict=str(sent.get("on_conflict") or "skip"),
        domain=str(sent.get("domain") or ""),
        owner=str(sent.get("owner") or ""),
    )
    try:
        asked = from_form(sent)
        upload = asked.file
        started = await imports.start(
            principal=viewer.principal,
            kind=kind.name,
            settings=asked.import_in.settings,
            file=None if upload is None else pieces(upload),
            filename=None if upload is None else upload.filename,
            on_conflict=asked.import_in.on_conflict,
            domain=asked.import_in.domain,
            owner=asked.import_in.owner,
        )
    except Problem as problem:
        if problem.status not in {413, 422}:
            raise
        shown = [FILE, "on_conflict", "domain", "owner", *form.values]
        aliases = {f"settings.{name}": name for name in form.values}
        form.errors = beside_fields(problem, shown, aliases=aliases)
        if not form.errors:
            form.error = problem.detail
        # A secret is never sent back to the browser.
        for setting in form.settings:
            if setting.secret:
                form.values[setting.name] = ""
        return await _form_page(request, viewer, imports, domain_admin, form, status=problem.status)
    return RedirectResponse(f"{PAGE}/{started.id}", 303)


async def _rows(
    imports: Imports,
    viewer: Viewer,
    import_id: int,
    outcomes: list[Outcome],
    after: int,
) -> tuple[list[ImportRow], dict[str, Any] | None]:
    """The report's rows to show, and the query of the next ones (None: no more).
    Without a filter, the failures come first, then the rest in order."""
    principal = viewer.principal
    if outcomes:
        report = await imports.report(
            import_id, principal=principal, after=after, limit=SHOWN, outcomes=outcomes
        )
        more = None
        if report.next_after is not None:
            more = {"outcome": outcomes, "after": report.next_after}
        return report.rows, more
    failed = await imports.report(import_id, principal=principal, limit=SHOWN, outcomes=["failed"])
    others: list[Outcome] = ["skipped", "renamed", "imported"]
    rest = await imports.report(import_id, principal=principal, limit=SHOWN, outcomes=others)
    more = None
    if rest.next_after is not None:
        more = {"outcome": others, "after": rest.next_after}
    return [*failed.rows, *rest.rows], more


@router.get(PAGE + "/{import_id}")
async def import_page(
    request: Request,
    import_id: int,
    viewer: ViewerDep,
    imports: ImportsDep,
    outcome: Annotated[list[Outcome] | None, Query()] = None,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> Response:
    found = await imports.get(import_id, principal=viewer.principal)
    chosen = [name for name in OUTCOMES if name in (outcome or [])]
    rows, more = await _rows(imports, viewer, import_id, chosen, after)
    return render(
        request,
        "imports/show.html",
        title=f"Import {found.id}",
        nav="imports",
        wide=True,
        one=found,
        source=_title(imports, found),
        rows=rows,
        more=more,
        chosen=chosen,
        outcomes=OUTCOMES,
    )


@router.get(PAGE + "/{import_id}/progress")
async def import_progress(
    request: Request, import_id: int, viewer: ViewerDep, imports: ImportsDep
) -> Response:
    """The progress part of an import's page, which htmx asks for while it runs: once
    the import has ended, the whole page again (its report is complete)."""
    found = await imports.get(import_id, principal=viewer.principal)
    ended = found.status in {"finished", "failed"}
    headers = {"HX-Refresh": "true"} if ended and request.headers.get("HX-Request") else {}
    return render(request, "imports/_progress.html", headers=headers, one=found)
