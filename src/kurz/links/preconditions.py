"""If-Match, as kurz reads it: a short list of its own entity tags, or `*`."""

from __future__ import annotations

import re

from kurz.errors import Problem
from kurz.links.queries import Versions

# A client has no reason to hold more than a few versions of a link; the bound keeps a
# hostile list from becoming one bind parameter per tag (asyncpg takes 32,767 at most).
MAX_IF_MATCH_TAGS = 32
# An entity tag as kurz issues them, the link's version in quotes, perhaps weakened
# (W/) on its way, e.g. by a proxy that compressed the response.
_TAG = re.compile(r'(W/)?"(\d{1,9})"')
_SHOWN = 40


def _malformed(detail: str) -> Problem:
    return Problem(400, "malformed-if-match", "Malformed If-Match", detail)


def parse_if_match(value: str) -> Versions:
    """The versions an If-Match header accepts (RFC 9110 13.1.1, strong comparison).

    A weak tag is well formed but never matches, so a header of weak tags only is a
    412 (the precondition is false), not a 400: RFC 9110 13.1.1 says so, and the 412
    sends the current ETag, from which the client can retry.
    """
    if value.strip() == "*":
        return Versions.any()
    parts = value.split(",")
    if len(parts) > MAX_IF_MATCH_TAGS:
        raise _malformed(f"If-Match lists more than {MAX_IF_MATCH_TAGS} entity tags.")
    allowed: set[int] = set()
    weak = False
    # Empty list elements are ignored, as RFC 9110 5.6.1.2 asks of a recipient.
    for tag in filter(None, (part.strip() for part in parts)):
        match = _TAG.fullmatch(tag)
        if match is None:
            shown = tag if len(tag) <= _SHOWN else tag[:_SHOWN] + "..."
            raise _malformed(
                f"If-Match holds {shown!r}, which is not an entity tag as kurz sends them "
                'in ETag: a version in double quotes, e.g. "3" (or W/"3", which never '
                "matches), or *."
            )
        if match.group(1):
            weak = True
        else:
            allowed.add(int(match.group(2)))
    if not allowed and not weak:
        raise _malformed('If-Match is empty: send the link\'s ETag, e.g. "3", or *.')
    return Versions(frozenset(allowed), weak_only=not allowed)
