"""What the idempotency store keeps of a keyed write, with no trace of the API it came by.

A record is keyed by (principal, operation, key) and holds the fingerprint of the
validated input, a status (200 for a result, else the refusal's Problem status) and
JSON: the result's, or the Problem's. Each API renders a replay as it renders a first
answer (docs/decisions/0004-idempotency.md).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from kurz.errors import Problem

R = TypeVar("R", bound=BaseModel)

# A record's status when the operation succeeded; a refusal keeps its Problem's.
DONE = 200


@dataclass(frozen=True, slots=True)
class Keyed:
    """A write's Idempotency-Key: whose it is, for which operation, bound to which input."""

    principal: str
    operation: str
    key: str
    # kurz.idempotency.fingerprint of the validated input (not of any API's bytes).
    fingerprint: str

    def lock_id(self) -> int:
        """A signed 64-bit id for PostgreSQL's advisory lock on this key."""
        raw = "\x00".join((self.principal, self.operation, self.key)).encode()
        return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big", signed=True)

    def params(self) -> dict[str, str]:
        return {"principal": self.principal, "operation": self.operation, "key": self.key}


@dataclass(frozen=True, slots=True)
class Done(Generic[R]):
    """An operation's result, and whether it is a replay of the one the record keeps."""

    value: R
    replayed: bool = False


class ReplayedProblem(Problem):
    """A refusal answered again from the record: the first Problem, marked as a replay."""


def problem_json(problem: Problem) -> str:
    """What the record keeps of a refusal besides its status."""
    kept: dict[str, Any] = {"type": problem.slug, "title": problem.title, "detail": problem.detail}
    if problem.errors is not None:
        kept["errors"] = list(problem.errors)
    if problem.extensions:
        kept["extensions"] = problem.extensions
    # A 412's ETag names the version that won: a replay must name it too.
    etag = problem.headers.get("ETag")
    if etag is not None:
        kept["etag"] = etag
    return json.dumps(kept, separators=(",", ":"), ensure_ascii=False)


def replayed_problem(status: int, text: str) -> ReplayedProblem:
    """The refusal `problem_json` kept, raised again."""
    kept = json.loads(text)
    etag = kept.get("etag")
    return ReplayedProblem(
        status,
        str(kept["type"]),
        str(kept["title"]),
        str(kept["detail"]),
        errors=kept.get("errors"),
        headers={"ETag": str(etag)} if etag is not None else None,
        extensions=kept.get("extensions"),
    )


def replay(status: int, text: str, result: type[R]) -> Done[R]:
    """The answer a record holds: its result again, or its refusal raised again."""
    if status != DONE:
        raise replayed_problem(status, text)
    return Done(result.model_validate_json(text), replayed=True)
