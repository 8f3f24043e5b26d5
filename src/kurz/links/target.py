"""Target: what the redirect path needs of one link, declared once.

The columns that load it (`COLUMNS`) and its form in L2 (`TargetCodec`) follow from
the declaration, so a new field cannot be loaded without being cached, or the other
way round.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import quote

import orjson
import sqlalchemy as sa

from kurz.db.tables import links
from kurz.links.routes import Routes
from kurz.links.rules import Rule, rules_of
from kurz.links.variants import Variants, compile_variants

# Browsers keep permanent redirects indefinitely unless told otherwise; a short
# private max-age lets an edit, an expiry or a visit cap take effect (as Shlink does).
_PERMANENT_CACHE = (b"cache-control", b"private, max-age=90")
_EMPTY = (b"content-length", b"0")
# Bytes a forwarded query string may carry into Location unescaped.
_QUERY_SAFE = "!$&'()*+,/:;=?@~-._%"


def _column(column: sa.ColumnElement[Any], *, moment: bool = False) -> dict[str, Any]:
    """A declared field's metadata: the column it is loaded from (a moment: as Unix
    seconds)."""
    return {"column": column, "moment": moment}


@dataclass(frozen=True, slots=True)
class Target:
    """What the redirect path needs to answer for one link, precomputed."""

    link_id: int = field(metadata=_column(links.c.id))
    version: int = field(metadata=_column(links.c.version))
    status: int = field(metadata=_column(links.c.redirect_status))
    url: str = field(metadata=_column(links.c.url))
    forward_query: bool = field(metadata=_column(links.c.forward_query))
    starts_at: float | None = field(metadata=_column(links.c.starts_at, moment=True))
    expires_at: float | None = field(metadata=_column(links.c.expires_at, moment=True))
    max_visits: int | None = field(metadata=_column(links.c.max_visits))
    # Targeting rules as links.rules stores them (JSON; kurz.links.conditions).
    targeting: str | None = field(default=None, metadata=_column(links.c.rules))
    # The A/B variants as stored (kurz.links.variants); None: none.
    variants_json: str | None = field(default=None, metadata=_column(links.c.variants))
    # Whether a password guards it; the hash itself stays in the database, never cached.
    protected: bool = field(
        default=False,
        metadata=_column(sa.type_coerce(links.c.password_hash.is_not(None), sa.Boolean)),
    )
    # What a link-preview bot is shown instead of the target (kurz.links.unfurlers).
    og_title: str | None = field(default=None, metadata=_column(links.c.og_title))
    og_description: str | None = field(default=None, metadata=_column(links.c.og_description))
    og_image: str | None = field(default=None, metadata=_column(links.c.og_image))
    # JSON: where a visit goes that the window or the cap refuses (kurz.links.models).
    fallbacks: str | None = field(default=None, metadata=_column(links.c.fallbacks))
    # The domain it answers on (0: the default domain).
    domain_id: int = field(default=0, metadata=_column(links.c.domain_id))

    # Worked out once from the fields above, for the redirect path.
    # Every URL a visit may be sent to, numbered as the pipeline picks them: 0 is
    # `url`, then each targeting rule's (kurz.links.routes), then each variant's.
    urls: tuple[str, ...] = field(init=False, repr=False, compare=False)
    # The redirect's headers for each of `urls`, before any forwarded query.
    locations: tuple[list[tuple[bytes, bytes]], ...] = field(init=False, repr=False, compare=False)
    # The headers for `url` (locations[0]).
    headers: list[tuple[bytes, bytes]] = field(init=False, repr=False, compare=False)
    # The targeting rules, compiled; None without any.
    routes: Routes | None = field(init=False, repr=False, compare=False)
    # Whether a visit must pick among `urls` (Visits.where) rather than take `url`.
    routed: bool = field(init=False, repr=False, compare=False)
    # The rules of kurz.links.rules this link carries.
    rules: tuple[Rule, ...] = field(init=False, repr=False, compare=False)
    # The variants, compiled for choosing one after the rules; None without any.
    variants: Variants | None = field(init=False, repr=False, compare=False)
    # The index in `urls` of the first variant's URL (len(urls) without variants).
    first_variant: int = field(init=False, repr=False, compare=False)
    # A visit cap, a password or a preview: who visits (a bot?) changes the answer.
    screened: bool = field(init=False, repr=False, compare=False)
    # No rule, nothing screened, one URL: a visit is answered without asking anything.
    plain: bool = field(init=False, repr=False, compare=False)
    # The fallback URLs by the refusal they replace: not_yet, expired, used_up.
    fallback: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        routes = None if self.targeting is None else Routes(self.targeting)
        ruled = (self.url, *(routes.urls if routes is not None else ()))
        variants = compile_variants(self.variants_json, len(ruled))
        urls = (*ruled, *(variant.url for variant in variants.items)) if variants else ruled
        locations = tuple(self._headers(url) for url in urls)
        rules = rules_of(self)
        routed = routes is not None or variants is not None
        screened = self.max_visits is not None or self.protected or self.previewed
        object.__setattr__(self, "urls", urls)
        object.__setattr__(self, "locations", locations)
        object.__setattr__(self, "headers", locations[0])
        object.__setattr__(self, "routes", routes)
        object.__setattr__(self, "routed", routed)
        object.__setattr__(self, "rules", rules)
        object.__setattr__(self, "variants", variants)
        object.__setattr__(self, "first_variant", len(ruled))
        object.__setattr__(self, "screened", screened)
        object.__setattr__(self, "plain", not rules and not screened and not routed)
        fallback = orjson.loads(self.fallbacks) if self.fallbacks else {}
        object.__setattr__(self, "fallback", {k: v for k, v in fallback.items() if v})

    def _headers(self, url: str) -> list[tuple[bytes, bytes]]:
        headers = [(b"location", url.encode("ascii")), _EMPTY]
        if self.status in (301, 308):
            headers.append(_PERMANENT_CACHE)
        return headers

    @property
    def capped(self) -> bool:
        """A visit uses one of a limited number up: deciding it needs the database."""
        return self.max_visits is not None

    @property
    def previewed(self) -> bool:
        """It carries fields for a link preview (Open Graph), shown to unfurlers."""
        return bool(self.og_title or self.og_description or self.og_image)

    @classmethod
    def from_row(cls, row: Any) -> Target:
        """The target in a row selected with COLUMNS."""
        values = {}
        for declared in DECLARED:
            value = getattr(row, declared.name)
            if declared.metadata["moment"] and value is not None:
                value = value.timestamp()
            values[declared.name] = value
        return cls(**values)

    def headers_for(self, query_string: bytes, at: int = 0) -> list[tuple[bytes, bytes]]:
        """The redirect's headers to `urls[at]`, the visitor's query forwarded to it if
        the link says so."""
        headers = self.locations[at]
        if not (self.forward_query and query_string):
            return headers
        return [(b"location", self.location(query_string, at).encode("ascii")), *headers[1:]]

    def location(self, query_string: bytes, at: int = 0) -> str:
        """Where the redirect to `urls[at]` goes, with the forwarded query."""
        url = self.urls[at]
        if not (self.forward_query and query_string):
            return url
        return _with_query(url, query_string.decode("latin-1"))

    def variant_at(self, at: int) -> str | None:
        """The variant's URL when `urls[at]` is one of the variants (what its click
        records); None for the link's url or a rule's."""
        return self.urls[at] if at >= self.first_variant else None


# The declared fields, in order: what is loaded, cached and compared.
DECLARED = tuple(declared for declared in fields(Target) if declared.init)
# What a SELECT of a target lists, each labelled with its field's name.
COLUMNS = tuple(declared.metadata["column"].label(declared.name) for declared in DECLARED)


def _with_query(url: str, query: str) -> str:
    """Append the visitor's query to the target's, before any #fragment."""
    base, hash_, fragment = url.partition("#")
    query = quote(query, safe=_QUERY_SAFE, encoding="latin-1")
    joined = f"{base}{'&' if '?' in base else '?'}{query}"
    return f"{joined}{hash_}{fragment}"


class TargetCodec:
    """Targets as L2 keeps them: a JSON array of the declared fields, after the shape.

    The shape (a checksum of the fields' names) tells an entry written by a kurz
    with other fields (during a rolling upgrade) from a damaged one: it is a miss,
    loaded afresh, not an error.
    """

    SHAPE = zlib.crc32(",".join(declared.name for declared in DECLARED).encode())

    def encode(self, target: Target) -> bytes:
        return orjson.dumps([self.SHAPE, *(getattr(target, d.name) for d in DECLARED)])

    def decode(self, payload: bytes) -> Target | None:
        shape, *values = orjson.loads(payload)
        if shape != self.SHAPE:
            return None
        return Target(*values)

    def version(self, target: Target) -> int:
        return target.version
