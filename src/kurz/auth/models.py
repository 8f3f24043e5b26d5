"""Scopes, the principal a request acts as, and the API key schemas."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kurz.dates import DateTime

Scope = Literal[
    "links:read", "links:write", "stats:read", "webhooks", "metrics:read", "proxy", "admin"
]

# What a key may be allowed (ADR 0016):
# - links:read, links:write: the caller's links (an admin's: every link);
# - stats:read: their click statistics;
# - webhooks: their webhook endpoints (ADR 0021): an endpoint is sent every future
#   change and click of the user's links, so a key that only makes links cannot
#   register one; not in a new key's scopes unless asked for;
# - metrics:read: /metrics, so that Prometheus needs no key that can delete links;
# - proxy: a gRPC ResolveLink caller (an edge proxy) may name whom a visit is for;
# - admin: users, everyone's keys and links, the audit log.
SCOPES: tuple[Scope, ...] = (
    "links:read",
    "links:write",
    "stats:read",
    "webhooks",
    "metrics:read",
    "proxy",
    "admin",
)
MEMBER_SCOPES: frozenset[Scope] = frozenset({"links:read", "links:write", "stats:read", "webhooks"})
# What a new key may do when its scopes are not named.
DEFAULT_KEY_SCOPES: frozenset[Scope] = frozenset({"links:read", "links:write", "stats:read"})
# What each role may do, and so the most any of its keys or sessions may.
ROLE_SCOPES: dict[str, frozenset[Scope]] = {
    "admin": frozenset(SCOPES),
    "member": MEMBER_SCOPES,
}
Role = Literal["admin", "member"]


def scopes_for(*, admin: bool = False, proxy: bool = False) -> list[Scope]:
    """A member's scopes, with an admin's and a proxy's added when asked: what an
    admin or proxy key had before scopes (and what `kurz keys create --admin` gives)."""
    scopes: set[Scope] = set(MEMBER_SCOPES)
    if admin:
        scopes |= {"metrics:read", "admin"}
    if proxy:
        scopes.add("proxy")
    return [name for name in SCOPES if name in scopes]


def parse_scopes(text: str) -> frozenset[Scope]:
    """The scopes stored as `text` (space-separated); unknown names are dropped."""
    known = set(SCOPES)
    return frozenset(name for name in text.split() if name in known)


def in_order(scopes: Collection[Scope]) -> list[Scope]:
    """`scopes` in SCOPES's order, each once."""
    return [name for name in SCOPES if name in scopes]


def format_scopes(scopes: Collection[Scope]) -> str:
    """Scopes as stored: space-separated, in SCOPES's order."""
    return " ".join(in_order(scopes))


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: a user, through one of their API keys or a session.

    `scopes` are what this call may do: a key's own scopes within its user's role,
    or, for a session, everything the role allows.
    """

    user_id: int
    role: Role
    scopes: frozenset[Scope]
    # The key's name, or the signed-in user's email.
    name: str
    # The key used; None when signed in with a session.
    key_id: int | None = None
    # The session's id hash; None when called with a key.
    session: str | None = None

    @property
    def is_admin(self) -> bool:
        """Sees and manages everything (the `admin` scope)."""
        return "admin" in self.scopes

    @property
    def is_proxy(self) -> bool:
        """May say whom a ResolveLink is for; any other caller's is its own visit."""
        return "proxy" in self.scopes

    @property
    def subject(self) -> str:
        """Whose API limit and idempotency keys a call uses: the key's, or, signed in,
        the user's."""
        return f"key:{self.key_id}" if self.key_id is not None else f"user:{self.user_id}"


# Ids are 64-bit integers in the database; a larger number names nothing.
MAX_ID = 2**63 - 1
_NAME = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = _NAME
    scopes: list[Scope] = Field(
        default_factory=lambda: sorted(DEFAULT_KEY_SCOPES),
        description="What the key may do; never more than its user's role allows.",
    )
    expires_at: DateTime | None = Field(
        default=None,
        description="When the key stops working (RFC 3339, with an offset, in the future); "
        "never, when absent.",
    )
    user: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ID,
        description="The user the key acts for: the caller when absent; an admin may name another.",
    )


class ApiKeyRead(BaseModel):
    id: int
    name: str
    user: int
    scopes: list[Scope]
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    # Shown once, at creation; only its hash is stored.
    secret: str


class ApiKeyList(BaseModel):
    """Keys, oldest first. Not paged: a user has a handful."""

    items: list[ApiKeyRead]
