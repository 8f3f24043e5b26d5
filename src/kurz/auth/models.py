"""API key schemas and the principal a request acts as."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True, slots=True)
class Principal:
    """The API key a request authenticated with."""

    key_id: int
    # The user the key acts for. Visibility still follows the key (issue 20 moves it).
    user_id: int
    name: str
    is_admin: bool
    # May say whom a ResolveLink is for; any other key's call is its own visit.
    is_proxy: bool = False


class ApiKeyBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
    is_admin: bool = False
    is_proxy: bool = False


class ApiKeyCreate(ApiKeyBase):
    pass


class ApiKeyRead(ApiKeyBase):
    id: int
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    # Shown once, at creation; only its hash is stored.
    secret: str
