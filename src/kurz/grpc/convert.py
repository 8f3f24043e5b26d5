"""Between the proto messages and kurz's schemas (the ones REST validates with).

A request becomes the JSON body REST would have received, then the same pydantic
model: both APIs accept and refuse exactly the same values, with the same messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from kurz.analytics.models import ClickCounts, Interval, LinkStats, TopValue
from kurz.errors import Problem, invalid
from kurz.grpc.errors import status_of
from kurz.grpc.kurz.v1 import links_pb2 as pb
from kurz.links.conditions import TargetingRule
from kurz.links.models import LinkActor, LinkRead
from kurz.links.target import Target

# UpdateLinkRequest fields an update_mask may name, and REST's names for them.
MASKABLE = {
    "url": "url",
    "start_time": "starts_at",
    "expire_time": "expires_at",
    "max_visits": "max_visits",
    "redirect_status": "redirect_status",
    "forward_query": "forward_query",
    "tags": "tags",
    "rules": "rules",
    "variants": "variants",
    "variant_choice": "variant_choice",
    "password": "password",
    "og_title": "og_title",
    "og_description": "og_description",
    "og_image": "og_image",
    "fallbacks": "fallbacks",
}
# Repeated fields: without a mask, they apply when they hold anything.
_REPEATED = ("tags", "rules", "variants")
# Optional strings that CreateLinkRequest and Link carry under REST's names.
_OPTIONAL_TEXT = ("og_title", "og_description", "og_image")
_FALLBACKS = ("not_yet", "expired", "used_up")
INTERVALS: dict[int, Interval] = {
    pb.INTERVAL_UNSPECIFIED: "day",
    pb.HOUR: "hour",
    pb.DAY: "day",
}


def timestamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at.astimezone(UTC))
    return stamp


# What google/protobuf/timestamp.proto allows (and datetime can hold). The wire carries
# any int64 seconds and int32 nanos; a value outside is the caller's error, not a crash.
_SECONDS = range(-62_135_596_800, 253_402_300_799 + 1)
_NANOS = range(1_000_000_000)
_RANGE = "from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z, nanos 0 to 999999999"


def moment(stamp: Timestamp, field: str) -> datetime:
    """The instant `stamp` stands for; a 422 naming `field` when it stands for none."""
    if stamp.seconds not in _SECONDS or stamp.nanos not in _NANOS:
        raise invalid(field, f"must be a valid Timestamp, {_RANGE}")
    return stamp.ToDatetime(tzinfo=UTC)


def moment_of(message: Message, field: str) -> datetime | None:
    """The instant in the Timestamp field `field` of `message`, None when it is unset."""
    if not message.HasField(field):
        return None
    stamp = getattr(message, field)
    assert isinstance(stamp, Timestamp)
    return moment(stamp, field)


def _iso(stamp: Timestamp, field: str) -> str:
    return moment(stamp, field).isoformat()


def batch_result(result: LinkRead | Problem) -> pb.BatchCreateLinkResult:
    """One result of a batch: the link, or the status CreateLink would have failed with."""
    if isinstance(result, Problem):
        return pb.BatchCreateLinkResult(error=status_of(result).details)
    return pb.BatchCreateLinkResult(link=link(result))


def link(read: LinkRead) -> pb.Link:
    message = pb.Link(
        code=read.code,
        short_url=read.short_url,
        url=read.url,
        alias=read.alias,
        create_time=timestamp(read.created_at),
        update_time=timestamp(read.updated_at),
        redirect_status=read.redirect_status,
        forward_query=read.forward_query,
        tags=read.tags,
        version=read.version,
        rules=[_rule(rule) for rule in read.rules],
        password_protected=read.password_protected,
        domain=read.domain or "",
        fallbacks=pb.LinkFallbacks(**read.fallbacks.model_dump(exclude_none=True)),
    )
    for name in _OPTIONAL_TEXT:
        value = getattr(read, name)
        if value is not None:
            setattr(message, name, value)
    if read.valid_from is not None:
        message.start_time.CopyFrom(timestamp(read.valid_from))
    if read.expires_at is not None:
        message.expire_time.CopyFrom(timestamp(read.expires_at))
    if read.max_visits is not None:
        message.max_visits = read.max_visits
    if read.created_by is not None:
        message.created_by.CopyFrom(_actor(read.created_by))
    if read.updated_by is not None:
        message.updated_by.CopyFrom(_actor(read.updated_by))
    if read.variants is not None:
        message.variants.extend(
            pb.LinkVariant(url=variant.url, weight=variant.weight) for variant in read.variants
        )
    if read.variant_choice is not None:
        message.variant_choice = read.variant_choice
    return message


def _variants(variants: Iterable[pb.LinkVariant]) -> list[dict[str, Any]]:
    return [{"url": variant.url, "weight": variant.weight} for variant in variants]


def preview(target: Target) -> pb.Preview:
    """What ResolveLink tells a proxy to show a link-preview bot: no target."""
    message = pb.Preview(password_protected=target.protected)
    for name in _OPTIONAL_TEXT:
        value = getattr(target, name)
        if value is not None:
            setattr(message, name, value)
    return message


def _actor(actor: LinkActor) -> pb.LinkActor:
    message = pb.LinkActor(user=actor.user)
    if actor.key is not None:
        message.key = actor.key
    return message


def _rule(rule: TargetingRule) -> pb.TargetingRule:
    message = pb.TargetingRule(url=rule.url, match=rule.match)
    for condition in rule.conditions:
        fields = condition.model_dump(by_alias=True, exclude_none=True)
        part = message.conditions.add(type=fields["type"], values=fields.get("in", ()))
        if "param" in fields:
            part.param = fields["param"]
        if "equals" in fields:
            part.equals = fields["equals"]
        if "from" in fields:
            part.start_time.CopyFrom(timestamp(fields["from"]))
        if "until" in fields:
            part.end_time.CopyFrom(timestamp(fields["until"]))
    return message


def rules_body(rules: Iterable[pb.TargetingRule]) -> list[dict[str, Any]]:
    """REST's `rules` for the rules of a request (validated by the same models)."""
    body = []
    for rule in rules:
        conditions = []
        for condition in rule.conditions:
            part: dict[str, Any] = {"type": condition.type}
            if condition.values:
                part["in"] = list(condition.values)
            if condition.param:
                part["param"] = condition.param
            if condition.HasField("equals"):
                part["equals"] = condition.equals
            if condition.HasField("start_time"):
                part["from"] = _iso(condition.start_time, "start_time")
            if condition.HasField("end_time"):
                part["until"] = _iso(condition.end_time, "end_time")
            conditions.append(part)
        body.append({"url": rule.url, "match": rule.match or "all", "conditions": conditions})
    return body


def create_body(request: pb.CreateLinkRequest) -> dict[str, Any]:
    """The JSON body of the REST request that asks for the same link."""
    body: dict[str, Any] = {"url": request.url}
    if request.HasField("alias"):
        body["alias"] = request.alias
    if request.HasField("start_time"):
        body["starts_at"] = _iso(request.start_time, "start_time")
    if request.HasField("expire_time"):
        body["expires_at"] = _iso(request.expire_time, "expire_time")
    if request.HasField("max_visits"):
        body["max_visits"] = request.max_visits
    if request.HasField("redirect_status"):
        body["redirect_status"] = request.redirect_status
    if request.forward_query:
        body["forward_query"] = True
    if request.tags:
        body["tags"] = list(request.tags)
    if request.rules:
        body["rules"] = rules_body(request.rules)
    if request.variants:
        body["variants"] = _variants(request.variants)
    if request.HasField("variant_choice"):
        body["variant_choice"] = request.variant_choice
    for name in ("password", *_OPTIONAL_TEXT):
        if request.HasField(name):
            body[name] = getattr(request, name)
    if request.domain:
        body["domain"] = request.domain
    if request.HasField("fallbacks"):
        body["fallbacks"] = fallbacks(request.fallbacks)
    return body


def fallbacks(message: pb.LinkFallbacks) -> dict[str, str]:
    return {name: getattr(message, name) for name in _FALLBACKS if message.HasField(name)}


def update_body(request: pb.UpdateLinkRequest) -> dict[str, Any]:
    """The JSON body of the REST PATCH that makes the same change."""
    if request.HasField("update_mask"):
        paths = list(request.update_mask.paths)
        unknown = [path for path in paths if path not in MASKABLE]
        if unknown:
            raise invalid(
                "update_mask",
                f"names {', '.join(unknown)}; it may name {', '.join(MASKABLE)}",
            )
    else:
        paths = [name for name in MASKABLE if name not in _REPEATED and request.HasField(name)]
        paths += [name for name in _REPEATED if getattr(request, name)]
    body: dict[str, Any] = {}
    for path in paths:
        body[MASKABLE[path]] = _value(request, path)
    return body


def _value(request: pb.UpdateLinkRequest, path: str) -> Any:
    if path == "tags":
        return list(request.tags)
    if path == "rules":
        return rules_body(request.rules)
    if path == "variants":
        # Named and empty: removed, as REST's null.
        return _variants(request.variants) or None
    if not request.HasField(path):
        return None
    if path in ("start_time", "expire_time"):
        return _iso(getattr(request, path), path)
    if path == "fallbacks":
        return fallbacks(request.fallbacks)
    return getattr(request, path)


def _counts(counts: ClickCounts) -> pb.ClickCounts:
    return pb.ClickCounts(
        clicks=counts.clicks, uniques=counts.uniques, bot_clicks=counts.bot_clicks
    )


def _top(values: Iterable[TopValue]) -> list[pb.TopValue]:
    return [pb.TopValue(value=value.value, clicks=value.clicks) for value in values]


def link_stats(found: LinkStats) -> pb.LinkStats:
    top = found.top
    return pb.LinkStats(
        code=found.code,
        interval=pb.HOUR if found.interval == "hour" else pb.DAY,
        start_time=timestamp(found.start),
        end_time=timestamp(found.end),
        totals=_counts(found.totals),
        series=[
            pb.SeriesPoint(time=timestamp(point.at), counts=_counts(point))
            for point in found.series
        ],
        top=pb.TopValues(
            start_time=timestamp(top.start),
            end_time=timestamp(top.end),
            referrer=_top(top.referrer),
            browser=_top(top.browser),
            os=_top(top.os),
            device=_top(top.device),
            country=_top(top.country),
            city=_top(top.city),
            bot=_top(top.bot),
            variant=_top(top.variant),
        ),
    )
