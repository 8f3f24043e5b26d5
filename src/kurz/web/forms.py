"""Reading a posted form, and putting a use case's errors beside the fields they name."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import FormData

from kurz.errors import Problem, validation_problem

MAX_FIELDS = 1_000


class Posted:
    """A posted form's fields: `first` for a one-value field, `all` for a repeated one."""

    def __init__(self, form: FormData | None = None) -> None:
        self._form = form

    def first(self, name: str, default: str = "") -> str:
        if self._form is None:
            return default
        value = self._form.get(name)
        return value if isinstance(value, str) else default

    def all(self, name: str) -> list[str]:
        if self._form is None:
            return []
        return [value for value in self._form.getlist(name) if isinstance(value, str)]

    def values(self) -> dict[str, str]:
        """Each field's first value (to show a form again as it was sent)."""
        if self._form is None:
            return {}
        return {name: self.first(name) for name in self._form}


async def posted(request: Request) -> Posted:
    """The form the request carries (urlencoded or multipart); empty if it is none."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type not in {"application/x-www-form-urlencoded", "multipart/form-data"}:
        return Posted()
    try:
        return Posted(await request.form(max_fields=MAX_FIELDS))
    except Exception:
        return Posted()


def beside_fields(
    problem: Problem, shown: Iterable[str], *, aliases: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The problem's `errors` by the form field they name (`rules.0.url` -> `rules`, or
    `aliases[...]`), for those the form shows; the first message for each."""
    names = set(shown)
    aliases = aliases or {}
    found: dict[str, str] = {}
    for error in _errors(problem.errors):
        field = str(error.get("field", ""))
        name = aliases.get(field) or aliases.get(field.split(".")[0]) or field.split(".")[0]
        if name in names:
            found.setdefault(name, str(error.get("message", problem.detail)))
    return found


def _errors(errors: Sequence[Mapping[str, Any]] | None) -> Sequence[Mapping[str, Any]]:
    return errors or ()


def as_problem(exc: ValidationError) -> Problem:
    """A form's model that failed to validate, as the API's 422 for the same body."""
    return validation_problem([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()])
