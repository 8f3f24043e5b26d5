"""Many links in one request: each item read and answered on its own, the whole
written in chunks (docs/batch.md).

The use case is `Links.create_many` (kurz.links.service); this module holds what it
and the APIs share: how an item is read, what an answer looks like, and the problem
of the links a failed chunk left unwritten.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from kurz.errors import Problem, validation_problem
from kurz.links.models import LinkCreate, LinkRead

# Links written per transaction. A chunk holds SQLite's one write lock while it
# writes, so other writers (a click batch, a single create) wait at most one chunk;
# larger chunks gain little once a chunk's own statements outweigh a commit's
# (docs/batch.md has the figures).
CHUNK = 100


def parsed(item: Any) -> LinkCreate | Problem:
    """One item of a batch as POST /api/v1/links reads a body: the link asked for, or
    the 422 it would answer (the fields named as in that body)."""
    try:
        # As FastAPI validates a body (attributes too), so that the messages are alike.
        return LinkCreate.model_validate(item, from_attributes=True)
    except ValidationError as exc:
        return validation_problem([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()])


def entry(result: LinkRead | Problem) -> str:
    """One result's JSON: the link as POST /api/v1/links renders it, or the problem."""
    if isinstance(result, Problem):
        return json.dumps(result.body(), separators=(",", ":"), ensure_ascii=False)
    return result.model_dump_json()


def answer(entries: Sequence[str]) -> str:
    """The whole answer's JSON (kurz.links.models.LinkBatchResults), from its entries."""
    return f'{{"results":[{",".join(entries)}]}}'


# Why a chunk was not written, by the problem type its links then answer.
_WHY = {
    "database-unavailable": "the database did not answer",
    "database-busy": "every database connection stayed busy",
    "internal-error": "an unexpected error occurred",
}


def interrupted(cause: BaseException, start: int, end: int) -> Problem:
    """The problem of each link from links[start] on, once the transaction of
    links[start] to links[end - 1] failed: the database's 503 when it did not answer,
    else a 500, each saying that the batch stopped there."""
    if isinstance(cause, Problem) and cause.slug in _WHY:
        status, slug, title = cause.status, cause.slug, cause.title
    else:
        status, slug, title = 500, "internal-error", "Internal Server Error"
    return Problem(
        status,
        slug,
        title,
        f"Not written: the batch stopped at links[{start}], as writing links[{start}] to "
        f"links[{end - 1}] failed ({_WHY[slug]}); the links before it were written. Send the "
        "same batch again with the same Idempotency-Key to write the rest (without one, "
        "the links written so far would be made again).",
    )


@dataclass(frozen=True, slots=True)
class BatchAnswer:
    """A batch's answer: its JSON (kurz.links.models.LinkBatchResults), one result per
    link asked for, in order; `replayed`: the answer an Idempotency-Key's record kept,
    sent again."""

    text: str
    replayed: bool = False

    def results(self) -> Iterator[LinkRead | Problem]:
        """Each result read back: a link, or a Problem (for an API that renders them
        otherwise)."""
        for found in json.loads(self.text)["results"]:
            if "type" not in found:
                yield LinkRead.model_validate(found)
                continue
            yield Problem(
                found.pop("status"),
                str(found.pop("type")).removeprefix("/problems/"),
                found.pop("title"),
                found.pop("detail"),
                errors=found.pop("errors", None),
                extensions=found,
            )
