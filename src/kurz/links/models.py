"""Link schemas: LinkBase -> LinkCreate / LinkUpdate -> LinkRead -> LinkPagination, and
a batch's: LinkBatchCreate -> LinkBatchResults."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SkipValidation,
    StrictBool,
    StrictInt,
    StrictStr,
)

from kurz.dates import DateTime
from kurz.links.conditions import Rules, TargetingRule
from kurz.links.hosts import MAX_HOST_LENGTH, normalize_host
from kurz.links.urls import (
    MAX_TAG_LENGTH,
    MAX_URL_LENGTH,
    normalize_target,
    validate_alias,
    validate_tag,
)
from kurz.links.variants import MAX_VARIANTS, MAX_WEIGHT, MIN_VARIANTS, VariantChoice

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
# A link's password is shared with its visitors, unlike an account's (kurz.accounts):
# short ones are allowed, and the wrong-password limit guards them.
MIN_PASSWORD = 4
MAX_PASSWORD = 128


def _encodable(password: str) -> str:
    try:
        password.encode()
    except UnicodeEncodeError:
        raise ValueError("A password is Unicode text without lone surrogates.") from None
    return password


LinkPassword = Annotated[
    StrictStr,
    Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD, examples=["open sesame"]),
    AfterValidator(_encodable),
]
OgTitle = Annotated[StrictStr, Field(min_length=1, max_length=300)]
OgDescription = Annotated[StrictStr, Field(min_length=1, max_length=1000)]


def _host(host: str) -> str:
    normal = normalize_host(host)
    if normal is None:
        raise ValueError("is not a host name")
    return normal


# A domain's host in any spelling (case, trailing dot, port, IDN): kept in its one form.
Host = Annotated[
    str,
    Field(max_length=MAX_HOST_LENGTH + 8, examples=["s.example"]),
    AfterValidator(_host),
]


def _unique(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))


Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS), AfterValidator(_unique)]


class LinkBase(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Fallbacks(LinkBase):
    """Where a visit goes that the link refuses, instead of kurz's page (410)."""

    not_yet: TargetUrl | None = Field(default=None, description="Before `valid_from`.")
    expired: TargetUrl | None = Field(
        default=None, description="From `expires_at` (else the domain's expired redirect)."
    )
    used_up: TargetUrl | None = Field(
        default=None, description="Past `max_visits` (else the domain's used-up redirect)."
    )


# The column is starts_at, the API's name valid_from; starts_at is still accepted.
_VALID_FROM = Field(
    default=None,
    validation_alias=AliasChoices("valid_from", "starts_at"),
    description="When the link starts to redirect (`starts_at`: a deprecated synonym).",
)


class LinkVariant(LinkBase):
    """One A/B variant of a link: where it goes, and its share of the visits (its
    weight over the sum of the link's weights)."""

    url: TargetUrl
    weight: Annotated[StrictInt, Field(ge=1, le=MAX_WEIGHT, examples=[70])]


def _distinct_urls(variants: list[LinkVariant]) -> list[LinkVariant]:
    if len({variant.url for variant in variants}) < len(variants):
        # Clicks are counted by variant URL: two alike could not be told apart.
        raise ValueError("must go to different URLs")
    return variants


LinkVariants = Annotated[
    list[LinkVariant],
    Field(min_length=MIN_VARIANTS, max_length=MAX_VARIANTS),
    AfterValidator(_distinct_urls),
]


class LinkCreate(LinkBase):
    url: TargetUrl
    domain: Host | None = Field(
        default=None, description="The domain the link answers on; absent: the default."
    )
    alias: Alias | None = None
    starts_at: DateTime | None = _VALID_FROM
    expires_at: DateTime | None = None
    max_visits: MaxVisits | None = None
    fallbacks: Fallbacks | None = None
    redirect_status: RedirectStatus = 302
    forward_query: StrictBool = False
    tags: Tags = []
    rules: Rules = Field(
        default=[],
        description="Targeting rules, in order: a visit goes to the URL of the first whose "
        "conditions hold, else to `url` (docs/rules.md). At most 32.",
    )
    variants: LinkVariants | None = Field(
        default=None,
        description="2 to 10 A/B variants; a visit no rule sends elsewhere goes to one "
        "of them instead of `url` (docs/variants.md).",
    )
    variant_choice: VariantChoice | None = Field(
        default=None,
        description="How a visit's variant is chosen: `random` (the default) per visit, "
        "or `sticky`: the same for one visitor all (UTC) day. Only with `variants`.",
    )
    password: LinkPassword | None = Field(
        default=None, description="Write-only: visitors must give it (stored hashed)."
    )
    og_title: OgTitle | None = None
    og_description: OgDescription | None = None
    og_image: TargetUrl | None = None


class LinkUpdate(LinkBase):
    """A partial update: absent fields stay as they are; null clears a clearable one."""

    url: TargetUrl | None = None
    starts_at: DateTime | None = _VALID_FROM
    expires_at: DateTime | None = None
    max_visits: MaxVisits | None = None
    fallbacks: Fallbacks | None = None
    redirect_status: RedirectStatus | None = None
    forward_query: StrictBool | None = None
    tags: Tags | None = None
    # The whole list is replaced; null or [] leaves the link without rules.
    rules: Rules | None = None
    variants: LinkVariants | None = Field(
        default=None, description="The variants, all of them; null removes them."
    )
    variant_choice: VariantChoice | None = Field(
        default=None, description="Changes how a variant is chosen (the link keeps its variants)."
    )
    password: LinkPassword | None = Field(
        default=None, description="Write-only; null removes the password."
    )
    og_title: OgTitle | None = None
    og_description: OgDescription | None = None
    og_image: TargetUrl | None = None


class LinkActor(BaseModel):
    """Who made or changed a link: a user, and the API key they used."""

    user: int
    key: int | None = Field(description="The API key used; null when signed in.")


class LinkRead(BaseModel):
    code: str
    # Records kept before the field existed (idempotency replays) have none.
    domain: str | None = Field(default=None, description="The host the link answers on.")
    short_url: str
    url: str
    alias: bool
    created_at: datetime
    updated_at: datetime
    # Records kept before the field existed (idempotency replays) have none, or call it
    # starts_at.
    valid_from: datetime | None = Field(
        default=None, validation_alias=AliasChoices("valid_from", "starts_at")
    )
    expires_at: datetime | None
    max_visits: int | None
    fallbacks: Fallbacks = Field(default_factory=Fallbacks)
    redirect_status: int
    forward_query: bool
    tags: list[str]
    # Records kept before the field existed (idempotency replays) have none.
    rules: list[TargetingRule] = []
    # Records kept before the fields existed (idempotency replays) have neither.
    variants: list[LinkVariant] | None = None
    variant_choice: VariantChoice | None = Field(
        default=None, description="`random` or `sticky`; null for a link without variants."
    )
    version: int
    # Records kept before the fields existed (idempotency replays) have neither.
    created_by: LinkActor | None = Field(default=None, description="Who made the link.")
    updated_by: LinkActor | None = Field(
        default=None, description="Who changed it last; null until it is first changed."
    )
    # Records kept before the fields existed (idempotency replays) have none.
    password_protected: bool = Field(
        default=False, description="Whether visitors must give a password."
    )
    og_title: str | None = None
    og_description: str | None = None
    og_image: str | None = None


class LinkPagination(BaseModel):
    items: list[LinkRead]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


# Links one batch may ask for (docs/batch.md).
MAX_BATCH = 1_000


class LinkBatchCreate(BaseModel):
    """Many links at once: each item is what POST /api/v1/links takes."""

    model_config = ConfigDict(extra="forbid")

    # Each item is validated on its own (kurz.links.batch.parsed): a bad one is its own
    # problem, in its place, and never the whole batch's.
    links: list[SkipValidation[LinkCreate]] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=f"1 to {MAX_BATCH:,} links, each as `POST /api/v1/links` takes it.",
    )


class LinkProblem(BaseModel):
    """Why one link of a batch was not made: the RFC 9457 problem POST /api/v1/links
    would have answered for it (docs/problems.md)."""

    type: str = Field(examples=["/problems/alias-taken"])
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = Field(
        default=None, description="Validation problems only: one entry per failing field."
    )


class LinkBatchResults(BaseModel):
    results: list[LinkRead | LinkProblem] = Field(
        description="One per link asked for, in the same order: the link made, or its problem."
    )
