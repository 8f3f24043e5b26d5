"""An import as a request carries it: JSON (a source without a file), or a form with
its file, which goes on to the use case a piece at a time (kurz.imports.service)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final

from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response

from kurz.auth.cookies import CSRF_FIELD
from kurz.errors import Problem, validation_problem
from kurz.imports.models import ImportCreate

# The fields of a form that are not the source's settings.
FIELDS: Final = ("source", "on_conflict", "domain", "owner")
FILE: Final = "file"
# How much of the file is read at a time (Starlette keeps the upload on disk past 1 MiB).
PIECE: Final = 256 * 1024
FORMS: Final = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})
JSON: Final = "application/json"


@dataclass(frozen=True, slots=True)
class Sent:
    """What a request asks to import, and the file it carries (None: no file part)."""

    import_in: ImportCreate
    file: UploadFile | None = None


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


def too_large(limit: int) -> Problem:
    return Problem(
        413, "payload-too-large", "Payload Too Large", f"The body exceeds {limit} bytes."
    )


def unsupported(found: str) -> Problem:
    return Problem(
        415,
        "unsupported-media-type",
        "Unsupported Media Type",
        f"Send the import as application/json, or as multipart/form-data with its file in "
        f"the `file` field (not {found or 'a body without a Content-Type'}).",
    )


async def from_json(request: Request, limit: int) -> Sent:
    """The import a JSON body asks for; the body is read up to `limit` bytes only."""
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            raise too_large(limit)
    try:
        return Sent(ImportCreate.model_validate_json(bytes(body)))
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise Problem(
                400, "malformed-json", "Malformed JSON", "The body is not valid JSON."
            ) from None
        raise _invalid(exc) from None


def _invalid(exc: ValidationError) -> Problem:
    return validation_problem([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()])


def from_form(form: FormData) -> Sent:
    """The import a form asks for: `source`, `on_conflict`, `domain`, `owner`, the file
    in `file`, and every other field one of the source's settings. An empty field is
    one not given."""
    given: dict[str, str] = {}
    for name, value in form.multi_items():
        if isinstance(value, str) and value.strip() and name not in given:
            given[name] = value.strip()
    settings = {
        name: value
        for name, value in given.items()
        if name not in FIELDS and name not in {FILE, CSRF_FIELD}
    }
    upload = form.get(FILE)
    fields: dict[str, object] = {name: given[name] for name in FIELDS if name in given}
    try:
        import_in = ImportCreate.model_validate({**fields, "settings": settings})
    except ValidationError as exc:
        raise _invalid(exc) from None
    # A file part a browser sends with no file chosen has no name and nothing in it.
    chosen = isinstance(upload, UploadFile) and (upload.filename or upload.size)
    return Sent(import_in, upload if chosen and isinstance(upload, UploadFile) else None)


async def pieces(upload: UploadFile) -> AsyncIterator[bytes]:
    """The uploaded file, a piece at a time, from the start."""
    await upload.seek(0)
    while piece := await upload.read(PIECE):
        yield piece


class FormsClosed(APIRoute):
    """A route whose request's form, once read (by the route, or by the CSRF check
    before it, which may refuse it), has its files closed when the route is done."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def closing(request: Request) -> Response:
            try:
                return await handle(request)
            finally:
                await request.close()

        return closing
