import datetime

from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Interval(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTERVAL_UNSPECIFIED: _ClassVar[Interval]
    HOUR: _ClassVar[Interval]
    DAY: _ClassVar[Interval]
INTERVAL_UNSPECIFIED: Interval
HOUR: Interval
DAY: Interval

class Link(_message.Message):
    __slots__ = ("code", "short_url", "url", "alias", "create_time", "update_time", "expire_time", "max_visits", "redirect_status", "forward_query", "tags", "version", "start_time", "created_by", "updated_by", "password_protected", "og_title", "og_description", "og_image", "rules", "domain", "fallbacks", "variants", "variant_choice")
    CODE_FIELD_NUMBER: _ClassVar[int]
    SHORT_URL_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    MAX_VISITS_FIELD_NUMBER: _ClassVar[int]
    REDIRECT_STATUS_FIELD_NUMBER: _ClassVar[int]
    FORWARD_QUERY_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_PROTECTED_FIELD_NUMBER: _ClassVar[int]
    OG_TITLE_FIELD_NUMBER: _ClassVar[int]
    OG_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    OG_IMAGE_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    FALLBACKS_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    VARIANT_CHOICE_FIELD_NUMBER: _ClassVar[int]
    code: str
    short_url: str
    url: str
    alias: bool
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    max_visits: int
    redirect_status: int
    forward_query: bool
    tags: _containers.RepeatedScalarFieldContainer[str]
    version: int
    start_time: _timestamp_pb2.Timestamp
    created_by: LinkActor
    updated_by: LinkActor
    password_protected: bool
    og_title: str
    og_description: str
    og_image: str
    rules: _containers.RepeatedCompositeFieldContainer[TargetingRule]
    domain: str
    fallbacks: LinkFallbacks
    variants: _containers.RepeatedCompositeFieldContainer[LinkVariant]
    variant_choice: str
    def __init__(self, code: _Optional[str] = ..., short_url: _Optional[str] = ..., url: _Optional[str] = ..., alias: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., max_visits: _Optional[int] = ..., redirect_status: _Optional[int] = ..., forward_query: _Optional[bool] = ..., tags: _Optional[_Iterable[str]] = ..., version: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[_Union[LinkActor, _Mapping]] = ..., updated_by: _Optional[_Union[LinkActor, _Mapping]] = ..., password_protected: _Optional[bool] = ..., og_title: _Optional[str] = ..., og_description: _Optional[str] = ..., og_image: _Optional[str] = ..., rules: _Optional[_Iterable[_Union[TargetingRule, _Mapping]]] = ..., domain: _Optional[str] = ..., fallbacks: _Optional[_Union[LinkFallbacks, _Mapping]] = ..., variants: _Optional[_Iterable[_Union[LinkVariant, _Mapping]]] = ..., variant_choice: _Optional[str] = ...) -> None: ...

class TargetingRule(_message.Message):
    __slots__ = ("url", "match", "conditions")
    URL_FIELD_NUMBER: _ClassVar[int]
    MATCH_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    url: str
    match: str
    conditions: _containers.RepeatedCompositeFieldContainer[Condition]
    def __init__(self, url: _Optional[str] = ..., match: _Optional[str] = ..., conditions: _Optional[_Iterable[_Union[Condition, _Mapping]]] = ...) -> None: ...

class Condition(_message.Message):
    __slots__ = ("type", "values", "param", "equals", "start_time", "end_time")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    PARAM_FIELD_NUMBER: _ClassVar[int]
    EQUALS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    type: str
    values: _containers.RepeatedScalarFieldContainer[str]
    param: str
    equals: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, type: _Optional[str] = ..., values: _Optional[_Iterable[str]] = ..., param: _Optional[str] = ..., equals: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LinkFallbacks(_message.Message):
    __slots__ = ("not_yet", "expired", "used_up")
    NOT_YET_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    USED_UP_FIELD_NUMBER: _ClassVar[int]
    not_yet: str
    expired: str
    used_up: str
    def __init__(self, not_yet: _Optional[str] = ..., expired: _Optional[str] = ..., used_up: _Optional[str] = ...) -> None: ...

class LinkVariant(_message.Message):
    __slots__ = ("url", "weight")
    URL_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    url: str
    weight: int
    def __init__(self, url: _Optional[str] = ..., weight: _Optional[int] = ...) -> None: ...

class LinkActor(_message.Message):
    __slots__ = ("user", "key")
    USER_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    user: int
    key: int
    def __init__(self, user: _Optional[int] = ..., key: _Optional[int] = ...) -> None: ...

class CreateLinkRequest(_message.Message):
    __slots__ = ("url", "alias", "expire_time", "max_visits", "redirect_status", "forward_query", "tags", "start_time", "password", "og_title", "og_description", "og_image", "rules", "domain", "fallbacks", "variants", "variant_choice")
    URL_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    MAX_VISITS_FIELD_NUMBER: _ClassVar[int]
    REDIRECT_STATUS_FIELD_NUMBER: _ClassVar[int]
    FORWARD_QUERY_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    OG_TITLE_FIELD_NUMBER: _ClassVar[int]
    OG_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    OG_IMAGE_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    FALLBACKS_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    VARIANT_CHOICE_FIELD_NUMBER: _ClassVar[int]
    url: str
    alias: str
    expire_time: _timestamp_pb2.Timestamp
    max_visits: int
    redirect_status: int
    forward_query: bool
    tags: _containers.RepeatedScalarFieldContainer[str]
    start_time: _timestamp_pb2.Timestamp
    password: str
    og_title: str
    og_description: str
    og_image: str
    rules: _containers.RepeatedCompositeFieldContainer[TargetingRule]
    domain: str
    fallbacks: LinkFallbacks
    variants: _containers.RepeatedCompositeFieldContainer[LinkVariant]
    variant_choice: str
    def __init__(self, url: _Optional[str] = ..., alias: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., max_visits: _Optional[int] = ..., redirect_status: _Optional[int] = ..., forward_query: _Optional[bool] = ..., tags: _Optional[_Iterable[str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., password: _Optional[str] = ..., og_title: _Optional[str] = ..., og_description: _Optional[str] = ..., og_image: _Optional[str] = ..., rules: _Optional[_Iterable[_Union[TargetingRule, _Mapping]]] = ..., domain: _Optional[str] = ..., fallbacks: _Optional[_Union[LinkFallbacks, _Mapping]] = ..., variants: _Optional[_Iterable[_Union[LinkVariant, _Mapping]]] = ..., variant_choice: _Optional[str] = ...) -> None: ...

class BatchCreateLinksRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[CreateLinkRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[CreateLinkRequest, _Mapping]]] = ...) -> None: ...

class BatchCreateLinksResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[BatchCreateLinkResult]
    def __init__(self, results: _Optional[_Iterable[_Union[BatchCreateLinkResult, _Mapping]]] = ...) -> None: ...

class BatchCreateLinkResult(_message.Message):
    __slots__ = ("link", "error")
    LINK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    link: Link
    error: _status_pb2.Status
    def __init__(self, link: _Optional[_Union[Link, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class GetLinkRequest(_message.Message):
    __slots__ = ("code", "domain")
    CODE_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    code: str
    domain: str
    def __init__(self, code: _Optional[str] = ..., domain: _Optional[str] = ...) -> None: ...

class ListLinksRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "tag", "domain", "query", "tags", "order_by")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    tag: str
    domain: str
    query: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    order_by: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., tag: _Optional[str] = ..., domain: _Optional[str] = ..., query: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., order_by: _Optional[str] = ...) -> None: ...

class ListLinksResponse(_message.Message):
    __slots__ = ("links", "next_page_token")
    LINKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    links: _containers.RepeatedCompositeFieldContainer[Link]
    next_page_token: str
    def __init__(self, links: _Optional[_Iterable[_Union[Link, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateLinkRequest(_message.Message):
    __slots__ = ("code", "expected_version", "url", "expire_time", "max_visits", "redirect_status", "forward_query", "tags", "update_mask", "start_time", "password", "og_title", "og_description", "og_image", "rules", "domain", "fallbacks", "variants", "variant_choice")
    CODE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    MAX_VISITS_FIELD_NUMBER: _ClassVar[int]
    REDIRECT_STATUS_FIELD_NUMBER: _ClassVar[int]
    FORWARD_QUERY_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    OG_TITLE_FIELD_NUMBER: _ClassVar[int]
    OG_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    OG_IMAGE_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    FALLBACKS_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    VARIANT_CHOICE_FIELD_NUMBER: _ClassVar[int]
    code: str
    expected_version: int
    url: str
    expire_time: _timestamp_pb2.Timestamp
    max_visits: int
    redirect_status: int
    forward_query: bool
    tags: _containers.RepeatedScalarFieldContainer[str]
    update_mask: _field_mask_pb2.FieldMask
    start_time: _timestamp_pb2.Timestamp
    password: str
    og_title: str
    og_description: str
    og_image: str
    rules: _containers.RepeatedCompositeFieldContainer[TargetingRule]
    domain: str
    fallbacks: LinkFallbacks
    variants: _containers.RepeatedCompositeFieldContainer[LinkVariant]
    variant_choice: str
    def __init__(self, code: _Optional[str] = ..., expected_version: _Optional[int] = ..., url: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., max_visits: _Optional[int] = ..., redirect_status: _Optional[int] = ..., forward_query: _Optional[bool] = ..., tags: _Optional[_Iterable[str]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., password: _Optional[str] = ..., og_title: _Optional[str] = ..., og_description: _Optional[str] = ..., og_image: _Optional[str] = ..., rules: _Optional[_Iterable[_Union[TargetingRule, _Mapping]]] = ..., domain: _Optional[str] = ..., fallbacks: _Optional[_Union[LinkFallbacks, _Mapping]] = ..., variants: _Optional[_Iterable[_Union[LinkVariant, _Mapping]]] = ..., variant_choice: _Optional[str] = ...) -> None: ...

class DeleteLinkRequest(_message.Message):
    __slots__ = ("code", "expected_version", "domain")
    CODE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    code: str
    expected_version: int
    domain: str
    def __init__(self, code: _Optional[str] = ..., expected_version: _Optional[int] = ..., domain: _Optional[str] = ...) -> None: ...

class ResolveLinkRequest(_message.Message):
    __slots__ = ("code", "query", "peek", "client_ip", "user_agent", "referer", "password", "accept_language", "domain")
    CODE_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    PEEK_FIELD_NUMBER: _ClassVar[int]
    CLIENT_IP_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    REFERER_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    code: str
    query: str
    peek: bool
    client_ip: str
    user_agent: str
    referer: str
    password: str
    accept_language: str
    domain: str
    def __init__(self, code: _Optional[str] = ..., query: _Optional[str] = ..., peek: _Optional[bool] = ..., client_ip: _Optional[str] = ..., user_agent: _Optional[str] = ..., referer: _Optional[str] = ..., password: _Optional[str] = ..., accept_language: _Optional[str] = ..., domain: _Optional[str] = ...) -> None: ...

class ResolveLinkResponse(_message.Message):
    __slots__ = ("location", "redirect_status", "cache_control", "preview")
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    REDIRECT_STATUS_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    location: str
    redirect_status: int
    cache_control: str
    preview: Preview
    def __init__(self, location: _Optional[str] = ..., redirect_status: _Optional[int] = ..., cache_control: _Optional[str] = ..., preview: _Optional[_Union[Preview, _Mapping]] = ...) -> None: ...

class Preview(_message.Message):
    __slots__ = ("og_title", "og_description", "og_image", "password_protected")
    OG_TITLE_FIELD_NUMBER: _ClassVar[int]
    OG_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    OG_IMAGE_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_PROTECTED_FIELD_NUMBER: _ClassVar[int]
    og_title: str
    og_description: str
    og_image: str
    password_protected: bool
    def __init__(self, og_title: _Optional[str] = ..., og_description: _Optional[str] = ..., og_image: _Optional[str] = ..., password_protected: _Optional[bool] = ...) -> None: ...

class GetLinkStatsRequest(_message.Message):
    __slots__ = ("code", "start_time", "end_time", "interval", "top", "domain")
    CODE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    TOP_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    code: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    interval: Interval
    top: int
    domain: str
    def __init__(self, code: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., interval: _Optional[_Union[Interval, str]] = ..., top: _Optional[int] = ..., domain: _Optional[str] = ...) -> None: ...

class ClickCounts(_message.Message):
    __slots__ = ("clicks", "uniques", "bot_clicks")
    CLICKS_FIELD_NUMBER: _ClassVar[int]
    UNIQUES_FIELD_NUMBER: _ClassVar[int]
    BOT_CLICKS_FIELD_NUMBER: _ClassVar[int]
    clicks: int
    uniques: int
    bot_clicks: int
    def __init__(self, clicks: _Optional[int] = ..., uniques: _Optional[int] = ..., bot_clicks: _Optional[int] = ...) -> None: ...

class SeriesPoint(_message.Message):
    __slots__ = ("time", "counts")
    TIME_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    counts: ClickCounts
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., counts: _Optional[_Union[ClickCounts, _Mapping]] = ...) -> None: ...

class TopValue(_message.Message):
    __slots__ = ("value", "clicks")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CLICKS_FIELD_NUMBER: _ClassVar[int]
    value: str
    clicks: int
    def __init__(self, value: _Optional[str] = ..., clicks: _Optional[int] = ...) -> None: ...

class TopValues(_message.Message):
    __slots__ = ("start_time", "end_time", "referrer", "browser", "os", "device", "country", "bot", "city", "variant")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    REFERRER_FIELD_NUMBER: _ClassVar[int]
    BROWSER_FIELD_NUMBER: _ClassVar[int]
    OS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    BOT_FIELD_NUMBER: _ClassVar[int]
    CITY_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    referrer: _containers.RepeatedCompositeFieldContainer[TopValue]
    browser: _containers.RepeatedCompositeFieldContainer[TopValue]
    os: _containers.RepeatedCompositeFieldContainer[TopValue]
    device: _containers.RepeatedCompositeFieldContainer[TopValue]
    country: _containers.RepeatedCompositeFieldContainer[TopValue]
    bot: _containers.RepeatedCompositeFieldContainer[TopValue]
    city: _containers.RepeatedCompositeFieldContainer[TopValue]
    variant: _containers.RepeatedCompositeFieldContainer[TopValue]
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., referrer: _Optional[_Iterable[_Union[TopValue, _Mapping]]] = ..., browser: _Optional[_Iterable[_Union[TopValue, _Mapping]]] = ..., os: _Optional[_Iterable[_Union[TopValue, _Mapping]]] = ..., device: _Optional[_Iterable[_Union[TopValue, _Mapping]]] = ..., country: _Optional[_Iterable[_Union[TopValue, _Mapping]]] = ..., bot: _Optional[_Iterable[_Union[TopValue, _Mapping]]] = ..., city: _Optional[_Iterable[_Union[TopValue, _Mapping]]] = ..., variant: _Optional[_Iterable[_Union[TopValue, _Mapping]]] = ...) -> None: ...

class LinkStats(_message.Message):
    __slots__ = ("code", "interval", "start_time", "end_time", "totals", "series", "top")
    CODE_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    TOP_FIELD_NUMBER: _ClassVar[int]
    code: str
    interval: Interval
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    totals: ClickCounts
    series: _containers.RepeatedCompositeFieldContainer[SeriesPoint]
    top: TopValues
    def __init__(self, code: _Optional[str] = ..., interval: _Optional[_Union[Interval, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., totals: _Optional[_Union[ClickCounts, _Mapping]] = ..., series: _Optional[_Iterable[_Union[SeriesPoint, _Mapping]]] = ..., top: _Optional[_Union[TopValues, _Mapping]] = ...) -> None: ...
