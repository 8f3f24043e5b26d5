"""What the API says of an import (docs/imports.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from kurz.imports.sources import OnConflict

Status = Literal["queued", "running", "finished", "failed"]
Outcome = Literal["imported", "renamed", "skipped", "failed"]


class ImportRead(BaseModel):
    """An import: what it reads, how far it has got, and what it has made."""

    id: int
    source: str = Field(description="The source kind: csv, bitly-csv, bitly, yourls, ...")
    status: Status
    on_conflict: OnConflict
    domain: str | None = Field(description="Where links go that name no domain; null: default.")
    filename: str | None
    total: int | None = Field(description="Links the source holds, if it could tell.")
    read: int = Field(description="Links read so far.")
    imported: int
    skipped: int
    failed: int
    clicks: int = Field(description="Clicks carried over so far.")
    error: str | None = Field(description="Why a failed import stopped.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ImportRow(BaseModel):
    """A line of an import's report: one link read, and what became of it."""

    n: int = Field(description="Its place in the order read, from 1.")
    place: str = Field(description="Where the source has it: a line, a bitlink, a keyword.")
    source_id: str | None
    outcome: Outcome
    code: str | None = Field(description="Its code in kurz (skipped: the link made before).")
    reason: str | None


class ImportReport(BaseModel):
    rows: list[ImportRow]
    next_after: int | None = Field(description="Pass as `after` for the next rows; null: no more.")
