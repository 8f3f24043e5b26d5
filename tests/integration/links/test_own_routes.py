"""No route of kurz's own can be taken for a short code, and no alias can take one's
place: every own path is refused by `code_in`, and every first segment as an alias."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from kurz.links.codes import code_in

# Routing is the same whatever the deployment.
pytestmark = pytest.mark.parametrize("deployment", ["embedded"], indirect=True)

SAMPLE = "abcdefg"
# The routes that follow a link: they are the ones that take codes.
FOLLOW = {"/{code}", "/{code}/"}


def own_paths(app: FastAPI) -> dict[str, str]:
    """Every path template the app routes, and a path it answers (parameters filled)."""
    templates = {route.path_format for route in iter_route_contexts(app.routes)}
    templates.discard(None)
    return {t: re.sub(r"\{[^}]+\}", SAMPLE, t) for t in templates if t is not None}


def test_the_follow_routes_take_codes(app: FastAPI) -> None:
    # What makes the next test able to fail: a path that can be a code is seen as one.
    paths = own_paths(app)
    assert set(paths) >= FOLLOW
    assert {code_in(paths[template]) for template in FOLLOW} == {SAMPLE}


def test_no_own_route_can_be_taken_for_a_code(app: FastAPI) -> None:
    taken = {
        path: code_in(path)
        for template, path in own_paths(app).items()
        if template not in FOLLOW and code_in(path) is not None
    }
    assert taken == {}, "reserve these in kurz.links.urls.RESERVED"


async def test_no_alias_can_shadow_an_own_route(app: FastAPI, api: httpx.AsyncClient) -> None:
    firsts = {template.split("/")[1] for template in own_paths(app) if template not in FOLLOW}
    assert {"api", "docs", "healthz"} <= firsts
    for first in sorted(firsts):
        for alias in (first, first.upper(), first.capitalize()):
            response = await api.post(
                "/api/v1/links", json={"url": "https://example.com/", "alias": alias}
            )
            assert response.status_code == 422, (alias, response.text)
            assert response.json()["errors"][0]["field"] == "alias"
