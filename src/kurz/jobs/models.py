"""What a job is, and the states it moves through."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    # Waiting for its run_at, or for a free worker.
    QUEUED = "queued"
    # Held by a worker until locked_until; after that, any worker may take it again.
    RUNNING = "running"
    DONE = "done"
    # Out of attempts (or of a kind no worker knows): kept, with its last error, until
    # someone retries it by hand (`kurz jobs retry ID`).
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: str
    queue: str
    payload: dict[str, Any]
    priority: int
    run_at: datetime
    state: JobState
    attempts: int
    max_attempts: int
    unique_key: str | None
    locked_by: str | None
    locked_until: datetime | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> Job:
        return cls(
            id=row.id,
            kind=row.kind,
            queue=row.queue,
            payload=json.loads(row.payload),
            priority=row.priority,
            run_at=row.run_at,
            state=JobState(row.state),
            attempts=row.attempts,
            max_attempts=row.max_attempts,
            unique_key=row.unique_key,
            locked_by=row.locked_by,
            locked_until=row.locked_until,
            last_error=row.last_error,
            created_at=row.created_at,
            finished_at=row.finished_at,
        )
