"""Bitly's, Kutt's and Shlink's APIs as their documents (or code) say they answer, for
tests/integration/imports/apiserver.ApiServer to serve: a link as each renders one, and
a handler answering each request a source makes."""

from __future__ import annotations

import math
from typing import Any

from tests.integration.imports.apiserver import Answer, Asked, answer_json

BITLY_TOKEN = "bitly-test-token"
BITLY_GROUP = "Bg7aK1"
KUTT_KEY = "kutt-test-key-0123456789"
SHLINK_KEY = "3e6fc9b1-shlink-test-key"


def bitlink(bitlink_id: str, long_url: str | None, **fields: Any) -> dict[str, Any]:
    """A bitlink as Bitly's API renders one."""
    return {
        "references": {"group": f"https://api-ssl.bitly.com/v4/groups/{BITLY_GROUP}"},
        "link": f"https://{bitlink_id}",
        "id": bitlink_id,
        "long_url": long_url,
        "title": None,
        "archived": False,
        "created_at": "2020-01-02T23:51:47+0000",
        "created_by": "tester",
        "client_id": "a5e8cebb233c5d07e5c553e917dffb92fec5264d",
        "custom_bitlinks": [],
        "tags": [],
        "deeplinks": [],
        **fields,
    }


class FakeBitly:
    """Bitly's API over `links`, `per_page` at a time (whatever `size` asks), archived
    ones only when asked for."""

    def __init__(self, links: list[Any], clicks: dict[str, list[Any]], per_page: int = 2):
        self.links = links
        self.clicks = clicks
        self.per_page = per_page
        # Clicks refused, as to a plan without them.
        self.no_clicks = False

    def __call__(self, asked: Asked) -> Answer:
        if asked.headers.get("authorization") != f"Bearer {BITLY_TOKEN}":
            return answer_json(
                {
                    "message": "FORBIDDEN",
                    "resource": "bitlinks",
                    "description": "You are currently forbidden to access this resource.",
                },
                403,
            )
        if asked.path == "/v4/user":
            return answer_json({"login": "tester", "default_group_guid": BITLY_GROUP})
        if asked.path == f"/v4/groups/{BITLY_GROUP}/bitlinks":
            return answer_json(self._page(asked.query))
        if asked.path.startswith("/v4/bitlinks/") and asked.path.endswith("/clicks"):
            if self.no_clicks:
                return answer_json({"message": "UPGRADE_REQUIRED", "resource": "bitlinks"}, 402)
            found = self.clicks.get(asked.path.removeprefix("/v4/bitlinks/")[: -len("/clicks")])
            if found is None or asked.query != {"unit": "day", "units": "-1"}:
                return answer_json({"message": "NOT_FOUND", "resource": "bitlinks"}, 404)
            return answer_json(
                {
                    "unit_reference": "2024-05-04T00:00:00+0000",
                    "link_clicks": found,
                    "units": -1,
                    "unit": "day",
                }
            )
        return answer_json({"message": "NOT_FOUND"}, 404)

    def _page(self, query: dict[str, str]) -> dict[str, Any]:
        listed = [
            link
            for link in self.links
            if query.get("archived") in ("both", "on") or not link.get("archived")
        ]
        start = int(query.get("search_after", "tok0").removeprefix("tok"))
        end = start + self.per_page
        more = end < len(listed)
        after = f"tok{end}" if more else ""
        return {
            "links": listed[start:end],
            "pagination": {
                "search_after": after,
                "next": (
                    f"https://api-ssl.bitly.com/v4/groups/{BITLY_GROUP}/bitlinks?search_after={after}"
                    if more
                    else ""
                ),
                "size": self.per_page,
                "total": len(listed),
            },
        }


def link(n: int, **fields: Any) -> dict[str, Any]:
    """A link as Kutt's API renders one (sanitize.link)."""
    address = fields.pop("address", f"a{n}")
    domain = fields.get("domain")
    return {
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "address": address,
        "banned": False,
        "created_at": f"2024-01-{n % 28 + 1:02d}T10:00:00.000Z",
        "updated_at": "2024-02-01T00:00:00.000Z",
        "password": False,
        "description": None,
        "expire_in": None,
        "target": f"https://example.com/{n}",
        "visit_count": 0,
        "domain": None,
        "link": f"https://{domain or 'kutt.test'}/{address}",
        **fields,
    }


class FakeKutt:
    """Kutt's list of a user's links, answering at most `most` a request whatever the
    limit asked (Kutt's own most is 50)."""

    def __init__(self, links: list[Any], most: int = 50) -> None:
        self.links = links
        self.most = most

    def __call__(self, asked: Asked) -> Answer:
        if asked.headers.get("x-api-key") != KUTT_KEY:
            return answer_json({"error": "Unauthorized."}, 401)
        if asked.path != "/api/v2/links":
            return answer_json({"error": "Not found."}, 404)
        limit = min(int(asked.query.get("limit", "10")) or 10, self.most)
        skip = int(asked.query.get("skip", "0"))
        return answer_json(
            {
                "total": len(self.links),
                "limit": limit,
                "skip": skip,
                "data": self.links[skip : skip + limit],
            }
        )


def short_url(code: str, long_url: str | None, **fields: Any) -> dict[str, Any]:
    """A short URL as Shlink's API renders one."""
    domain = fields.get("domain")
    return {
        "shortCode": code,
        "shortUrl": f"https://{domain or 's.test'}/{code}",
        "longUrl": long_url,
        "dateCreated": "2023-08-21T20:34:16+02:00",
        "visitsSummary": {"total": 0, "nonBots": 0, "bots": 0},
        "tags": [],
        "meta": {"validSince": None, "validUntil": None, "maxVisits": None},
        "domain": None,
        "title": None,
        "crawlable": False,
        "forwardQuery": True,
        "hasRedirectRules": False,
        **fields,
    }


class FakeShlink:
    """Shlink's list of short URLs: newest first unless asked otherwise."""

    def __init__(self, urls: list[Any]) -> None:
        self.urls = urls

    def __call__(self, asked: Asked) -> Answer:
        if asked.headers.get("x-api-key") != SHLINK_KEY:
            return answer_json(
                {
                    "type": "https://shlink.io/api/error/invalid-api-key",
                    "title": "Invalid API key",
                    "detail": "Provided API key does not exist or is invalid.",
                    "status": 401,
                },
                401,
                **{"content-type": "application/problem+json"},
            )
        if asked.path != "/rest/v3/short-urls":
            return answer_json({"title": "Not found", "status": 404}, 404)
        ordered = self.urls if asked.query.get("orderBy") == "dateCreated-ASC" else self.urls[::-1]
        page = int(asked.query.get("page", "1"))
        per_page = int(asked.query.get("itemsPerPage", "10"))
        data = ordered[(page - 1) * per_page : page * per_page]
        return answer_json(
            {
                "shortUrls": {
                    "data": data,
                    "pagination": {
                        "currentPage": page,
                        "pagesCount": math.ceil(len(ordered) / per_page),
                        "itemsPerPage": per_page,
                        "itemsInCurrentPage": len(data),
                        "totalItems": len(ordered),
                    },
                }
            }
        )
