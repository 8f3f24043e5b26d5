"""Link schemas: LinkBase -> LinkCreate / LinkUpdate -> LinkRead -> LinkPagination."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
)

from kurz.dates import DateTime
from kurz.links.conditions import Rules, TargetingRule
from kurz.links.urls import (
    MAX_TAG_LENGTH,
    MAX_URL_LENGTH,
    normalize_target,
    validate_alias,
    validate_tag,
)

RedirectStatus = Literal[301, 302, 307, 308]
MAX_TAGS = 20
MAX_VISITS = 2**62

TargetUrl = Annotated[
    str,
    Field(max_length=MAX_URL_LENGTH * 2, examples=["https://example.com/some/long/path"]),
    AfterValidator(normalize_target),
]
Alias = Annotated[str, AfterValidator(validate_alias), Field(examples=["spring-sale"])]
Tag = Annotated[str, Field(max_length=MAX_TAG_LENGTH), AfterValidator(validate_tag)]
MaxVisits = Annotated[StrictInt, Field(ge=1, le=MAX_VISITS)]


def _unique(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))


Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS), AfterValidator(_unique)]


class LinkBase(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LinkCreate(LinkBase):
    url: TargetUrl
    alias: Alias | None = None
    starts_at: DateTime | None = None
    expires_at: DateTime | None = None
    max_visits: MaxVisits | None = None
    redirect_status: RedirectStatus = 302
    forward_query: StrictBool = False
    tags: Tags = []
    rules: Rules = Field(
        default=[],
        description="Targeting rules, in order: a visit goes to the URL of the first whose "
        "conditions hold, else to `url` (docs/rules.md). At most 32.",
    )


class LinkUpdate(LinkBase):
    """A partial update: absent fields stay as they are; null clears a clearable one."""

    url: TargetUrl | None = None
    starts_at: DateTime | None = None
    expires_at: DateTime | None = None
    max_visits: MaxVisits | None = None
    redirect_status: RedirectStatus | None = None
    forward_query: StrictBool | None = None
    tags: Tags | None = None
    # The whole list is replaced; null or [] leaves the link without rules.
    rules: Rules | None = None


class LinkActor(BaseModel):
    """Who made or changed a link: a user, and the API key they used."""

    user: int
    key: int | None = Field(description="The API key used; null when signed in.")


class LinkRead(BaseModel):
    code: str
    short_url: str
    url: str
    alias: bool
    created_at: datetime
    updated_at: datetime
    # Records kept before the field existed (idempotency replays) have none.
    starts_at: datetime | None = None
    expires_at: datetime | None
    max_visits: int | None
    redirect_status: int
    forward_query: bool
    tags: list[str]
    # Records kept before the field existed (idempotency replays) have none.
    rules: list[TargetingRule] = []
    version: int
    # Records kept before the fields existed (idempotency replays) have neither.
    created_by: LinkActor | None = Field(default=None, description="Who made the link.")
    updated_by: LinkActor | None = Field(
        default=None, description="Who changed it last; null until it is first changed."
    )


class LinkPagination(BaseModel):
    items: list[LinkRead]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )
