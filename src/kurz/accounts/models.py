"""The schemas of users, invitations and one-time links, as the API reads and writes them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kurz.accounts import emails
from kurz.accounts.passwords import check_new

Role = Literal["admin", "member"]
# What happens to a deleted user's links: given to another user, or deleted with them.
LinksFate = Literal["reassign", "delete"]

_DISPLAY_NAME = Field(
    default="",
    max_length=100,
    pattern=r"^[^\x00-\x1f\x7f]*$",
    description="How the user is shown to others; may be empty.",
)


def _email(value: str) -> str:
    return emails.normalise(value)


def _password(value: str) -> str:
    check_new(value)
    return value


class UserRead(BaseModel):
    id: int
    email: str
    display_name: str
    role: Role
    disabled: bool = Field(description="Disabled users' sessions and keys are refused.")
    disabled_at: datetime | None
    has_password: bool = Field(
        description="False for a user made for an API key (or before a reset link is used): "
        "such a user cannot sign in."
    )
    created_at: datetime
    last_seen_at: datetime | None


class UserPagination(BaseModel):
    items: list[UserRead]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class UserInvite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(
        max_length=1_000, description="Normalised (trimmed, lower-cased, IDNA domain)."
    )
    role: Role = "member"

    normalised_email = field_validator("email")(_email)


class UserUpdate(BaseModel):
    """A change to a user: only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    disabled: bool | None = Field(
        default=None,
        description="true ends the user's sessions at once and refuses their keys; "
        "false lets them in again.",
    )
    display_name: str | None = Field(default=None, max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")


class InvitationRead(BaseModel):
    """An invitation not yet used: the user is made when it is accepted."""

    email: str
    role: Role
    invited_by: int | None
    created_at: datetime
    expires_at: datetime


class InvitationCreated(BaseModel):
    """A new invitation, and the one-time link to pass on to the person (shown this once)."""

    email: str
    role: Role
    invited_by: int | None
    created_at: datetime
    invitation_url: str = Field(description="`{KURZ_BASE_URL}/_/invite/{token}`, usable once.")
    invitation_expires_at: datetime


class InvitationAccept(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(max_length=2_000)
    display_name: str = _DISPLAY_NAME

    checked_password = field_validator("password")(_password)


class PasswordReset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(max_length=2_000)

    checked_password = field_validator("password")(_password)


class SetupCreate(BaseModel):
    """The first admin, chosen through the first-run setup link."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=1_000)
    password: str = Field(max_length=2_000)
    display_name: str = _DISPLAY_NAME

    normalised_email = field_validator("email")(_email)
    checked_password = field_validator("password")(_password)


class ResetLink(BaseModel):
    reset_url: str = Field(description="`{KURZ_BASE_URL}/_/reset/{token}`, usable once.")
    expires_at: datetime
