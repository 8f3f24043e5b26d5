"""What the API says of an import (docs/imports.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kurz.imports.sources import OnConflict

Status = Literal["queued", "running", "finished", "failed"]
Outcome = Literal["imported", "renamed", "skipped", "failed"]


class ImportCreate(BaseModel):
    """A new import, as POST /api/v1/imports takes it in JSON (a source without a file)."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(
        max_length=40,
        description="The source kind: csv, bitly-csv, bitly, yourls, kutt, kutt-api, shlink, "
        "shlink-csv, kurz (docs/imports/).",
        examples=["bitly"],
    )
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="What the source needs besides a file: an API's address and token, a "
        "database URL (docs/imports/<source>.md).",
        examples=[{"token": "..."}],
    )
    on_conflict: OnConflict = Field(
        default="skip",
        description="A link whose alias is taken: skipped, renamed (alias-2, ...), or failed.",
    )
    domain: str | None = Field(
        default=None, max_length=253, description="Where links go that name no domain."
    )
    owner: str | None = Field(
        default=None,
        max_length=320,
        description="An admin may import for another user: their email. The caller when absent.",
    )


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


class ImportPagination(BaseModel):
    items: list[ImportRead]
    next_after: int | None = Field(
        description="Pass as `after` to get the next page; null on the last page."
    )


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
