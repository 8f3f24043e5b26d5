"""Domain schemas: DomainBase -> DomainCreate / DomainUpdate -> DomainRead -> DomainList."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from kurz.links.models import Host, TargetUrl

_REDIRECT = (
    "Where {what} goes instead of kurz's own page; null: the instance-wide setting "
    "({setting}), else the page."
)


class DomainBase(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DomainRedirects(DomainBase):
    root_redirect: TargetUrl | None = Field(
        default=None, description=_REDIRECT.format(what="GET /", setting="KURZ_ROOT_REDIRECT")
    )
    not_found_redirect: TargetUrl | None = Field(
        default=None,
        description=_REDIRECT.format(
            what="a visit of an unknown code", setting="KURZ_NOT_FOUND_REDIRECT"
        ),
    )
    expired_redirect: TargetUrl | None = Field(
        default=None,
        description=_REDIRECT.format(
            what="a visit of an expired link without a fallback", setting="KURZ_EXPIRED_REDIRECT"
        ),
    )
    used_up_redirect: TargetUrl | None = Field(
        default=None,
        description=_REDIRECT.format(
            what="a visit of a used-up link without a fallback", setting="KURZ_USED_UP_REDIRECT"
        ),
    )


class DomainCreate(DomainRedirects):
    host: Host = Field(description="Any spelling: case, a trailing dot and IDN are normalised.")
    https: StrictBool = Field(default=True, description="Whether its short URLs are https://.")


class DomainUpdate(DomainRedirects):
    """A partial update: absent fields stay as they are; null clears a redirect."""

    https: StrictBool | None = None


class DomainRead(BaseModel):
    host: str
    https: bool
    root_redirect: str | None
    not_found_redirect: str | None
    expired_redirect: str | None
    used_up_redirect: str | None
    created_at: datetime
    updated_at: datetime


class DomainList(BaseModel):
    items: list[DomainRead]
    default: str = Field(
        description="The default domain's host (KURZ_BASE_URL's), which has no row."
    )
