"""Targeting rules as the API takes them: an ordered list, first match wins.

Each rule is `{"url", "match": "all"|"any", "conditions": [...]}`; each condition
names its `type` and what it matches (docs/rules.md). They are validated here, on
write, so that a stored rule is always one kurz.links.routes can compile.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    TypeAdapter,
    model_validator,
)

from kurz.dates import DateTime
from kurz.links.urls import MAX_URL_LENGTH, normalize_target

MAX_RULES = 32
MAX_CONDITIONS = 16
# Enough for every country of a continent in one condition.
MAX_VALUES = 64
MAX_NAME = 100

DEVICES = ("ios", "android", "desktop", "other")

# ISO 3166-1 alpha-2, the officially assigned codes, and XK (Kosovo), which the
# geolocation databases (MaxMind, DB-IP, Cloudflare) use.
COUNTRIES = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO
    BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ
    DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP
    GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG
    KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML
    MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE
    PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL
    SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM
    US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW XK
    """.split()  # noqa: SIM905
)

# A BCP 47 language tag (RFC 5646) without extensions or private use: a language
# (ISO 639, 2 or 3 letters), then optionally a script, a region and variants.
_LANGUAGE_TAG = re.compile(
    r"(?P<language>[a-z]{2,3})(?:-(?P<script>[a-z]{4}))?(?:-(?P<region>[a-z]{2}|\d{3}))?"
    r"(?P<variants>(?:-(?:[a-z\d]{5,8}|\d[a-z\d]{3}))*)",
    re.IGNORECASE,
)


def language_tag(value: str) -> str:
    """`value` as a language tag in its conventional case (`en`, `zh-Hant-TW`)."""
    found = _LANGUAGE_TAG.fullmatch(value)
    if found is None:
        raise ValueError(f"'{value[:40]}' is not a language tag (BCP 47, such as en or de-CH)")
    tag = found["language"].lower()
    if found["script"]:
        tag += "-" + found["script"].title()
    if found["region"]:
        tag += "-" + found["region"].upper()
    return tag + found["variants"].lower()


def country_code(value: str) -> str:
    code = value.upper()
    if code not in COUNTRIES:
        raise ValueError(f"'{value[:40]}' is not an ISO 3166-1 alpha-2 country code")
    return code


def _name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


Name = Annotated[StrictStr, Field(max_length=MAX_NAME), AfterValidator(_name)]
Language = Annotated[StrictStr, Field(max_length=MAX_NAME), AfterValidator(language_tag)]
Country = Annotated[StrictStr, Field(max_length=2), AfterValidator(country_code)]
RuleUrl = Annotated[str, Field(max_length=MAX_URL_LENGTH * 2), AfterValidator(normalize_target)]


class _Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", serialize_by_alias=True)


class DeviceCondition(_Condition):
    """The visitor's device class: ios, android, desktop or other (bots among them)."""

    type: Literal["device"]
    in_: list[Literal["ios", "android", "desktop", "other"]] = Field(
        alias="in", min_length=1, max_length=len(DEVICES)
    )


class OsCondition(_Condition):
    """The OS family the user agent names (`iOS`, `Android`, `Windows`, `Mac OS X`,
    `Linux`...), compared without regard to case."""

    type: Literal["os"]
    in_: list[Name] = Field(alias="in", min_length=1, max_length=MAX_VALUES)


class BrowserCondition(_Condition):
    """The browser family (`Chrome`, `Firefox`, `Safari`, `Mobile Safari`, `Edge`...)."""

    type: Literal["browser"]
    in_: list[Name] = Field(alias="in", min_length=1, max_length=MAX_VALUES)


class LanguageCondition(_Condition):
    """The visitor's preferred language (Accept-Language, by q-value) is one of these,
    or more specific (`en` matches `en-GB`)."""

    type: Literal["language"]
    in_: list[Language] = Field(alias="in", min_length=1, max_length=MAX_VALUES)


class CountryCondition(_Condition):
    """The visitor's country (ISO 3166-1 alpha-2), as the geolocation database says."""

    type: Literal["country"]
    in_: list[Country] = Field(alias="in", min_length=1, max_length=MAX_VALUES)


class CityCondition(_Condition):
    """The visitor's city by its English name, where the database has cities."""

    type: Literal["city"]
    in_: list[Name] = Field(alias="in", min_length=1, max_length=MAX_VALUES)


class QueryCondition(_Condition):
    """The short URL's query has `param`; with `equals`, with that value."""

    type: Literal["query"]
    param: Annotated[StrictStr, Field(min_length=1, max_length=MAX_NAME)]
    equals: Annotated[StrictStr, Field(max_length=MAX_URL_LENGTH)] | None = None


class TimeCondition(_Condition):
    """The visit is at or after `from` and before `until` (either may be left out)."""

    type: Literal["time"]
    from_: DateTime | None = Field(default=None, alias="from")
    until: DateTime | None = None

    @model_validator(mode="after")
    def _a_window(self) -> TimeCondition:
        if self.from_ is None and self.until is None:
            raise ValueError("needs `from`, `until` or both")
        if self.from_ is not None and self.until is not None and self.from_ >= self.until:
            raise ValueError("`from` must be before `until`")
        return self


Condition = Annotated[
    DeviceCondition
    | OsCondition
    | BrowserCondition
    | LanguageCondition
    | CountryCondition
    | CityCondition
    | QueryCondition
    | TimeCondition,
    Field(discriminator="type"),
]


class TargetingRule(BaseModel):
    """Where a visit goes when its conditions hold: all of them, or any."""

    model_config = ConfigDict(extra="forbid")

    url: RuleUrl
    match: Literal["all", "any"] = "all"
    conditions: list[Condition] = Field(min_length=1, max_length=MAX_CONDITIONS)


Rules = Annotated[list[TargetingRule], Field(max_length=MAX_RULES)]
_RULES_JSON: TypeAdapter[list[TargetingRule]] = TypeAdapter(list[TargetingRule])


def stored(rules: list[TargetingRule] | None) -> str | None:
    """Rules as links.rules keeps them (JSON, as the API spells them); None for none."""
    if not rules:
        return None
    return _RULES_JSON.dump_json(rules, by_alias=True, exclude_none=True).decode()


def loaded(text: str | None) -> list[TargetingRule]:
    """The rules links.rules keeps, as the API shows them."""
    if text is None:
        return []
    return _RULES_JSON.validate_json(text)
