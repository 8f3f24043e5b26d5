"""A rate-limit policy: q requests per w seconds, with a burst."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d*)\s*([smhd]?)\s*(?:;\s*burst\s*=\s*(\d+)\s*)?")
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
# The fastest policy: 10,000 requests a second per key. GCRA compares float epoch
# seconds with a tolerance of 1 us (kurz.ratelimit.gcra.EPSILON); bounding the rate
# keeps that tolerance within 1% of a token, so every policy is really enforced.
MIN_INTERVAL = 1e-4


@dataclass(frozen=True, slots=True)
class Policy:
    """`limit` requests per `window` seconds, of which up to `burst` may come at once.

    As a token bucket: it holds `burst` tokens and gains one every `window / limit`
    seconds. kurz runs it as GCRA (docs/decisions/0003-rate-limiting.md).
    """

    name: str
    limit: int
    window: int
    burst: int
    # Derived once, since every check reads them (see __post_init__).
    interval: float = field(init=False, repr=False, compare=False)
    capacity: float = field(init=False, repr=False, compare=False)
    field_value: bytes = field(init=False, repr=False, compare=False)
    item: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"policy name {self.name!r} must be a short lowercase token")
        if self.limit < 1 or self.window < 1 or self.burst < 1:
            raise ValueError("limit, window and burst must all be at least 1")
        interval = self.window / self.limit
        if interval < MIN_INTERVAL:
            raise ValueError("a policy may allow at most 10,000 requests per second per key")
        # Seconds between tokens: GCRA's emission interval T.
        object.__setattr__(self, "interval", interval)
        # How far ahead of now the theoretical arrival time may run: burst x T.
        object.__setattr__(self, "capacity", self.burst * interval)
        # The policy's name as a Structured Field String, and the RateLimit-Policy
        # field value, which never changes for a policy.
        item = f'"{self.name}"'.encode()
        object.__setattr__(self, "item", item)
        object.__setattr__(self, "field_value", b"%s;q=%d;w=%d" % (item, self.limit, self.window))


def parse_policy(name: str, spec: str) -> Policy | None:
    """Read `120/60s;burst=20` (units s, m, h, d; burst defaults to the limit); `off` is None."""
    if spec.strip().lower() == "off":
        return None
    match = _SPEC.fullmatch(spec)
    if match is None:
        raise ValueError(
            f"rate-limit policy {spec!r} must look like '120/60s;burst=20' or be 'off'"
        )
    limit, count, unit, burst = match.groups()
    window = int(count or 1) * _UNITS[unit or "s"]
    return Policy(name, int(limit), window, int(burst) if burst else int(limit))
