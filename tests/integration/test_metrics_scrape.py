"""/metrics after known actions: each metric with the value those actions make,
embedded and scaled out (L2 on Redis nodes)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate, scopes_for
from kurz.clock import utcnow
from kurz.db import READ_COMMITTED
from kurz.jobs import JobStore
from tests.conftest import BASE_URL, Deployment, KeyMaker
from tests.support import FakeClock, running

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: Samples, name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
async def app(deployment: Deployment, clock: FakeClock) -> AsyncIterator[FastAPI]:
    # Three redirects a minute per client, none refilled: the fake clock stands still.
    settings = deployment.settings(ratelimit_redirect="3/60s;burst=3")
    async with running(settings, clock) as app:
        yield app


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(response.text)


async def test_each_metric_counts_what_was_done(
    app: FastAPI, make_key: KeyMaker, deployment: Deployment
) -> None:
    secret = await make_key("prometheus", admin=True)
    headers = {"Authorization": f"Bearer {secret}"}
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers) as api,
        httpx.AsyncClient(transport=transport, base_url=BASE_URL) as anon,
    ):
        before = await scrape(api)
        for name in ("one", "two"):
            made = await api.post(
                "/api/v1/links", json={"url": "https://example.com/", "alias": name}
            )
            assert made.status_code == 201, made.text
        # The first visit loads the link (L1 miss, then L2 if scaled out, then the
        # database); the second is the fast path's L1 hit; the third finds no link;
        # the fourth finds the link in L1 too, and is refused by the redirect limit.
        assert (await anon.get("/one")).status_code in (301, 302, 307, 308)
        assert (await anon.get("/one")).status_code in (301, 302, 307, 308)
        assert (await anon.get("/nothere")).status_code == 404
        refused = await anon.get("/one")
        assert refused.status_code == 429
        after = await scrape(api)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("kurz_redirects_total", outcome="redirected", path="full") == 1
    assert delta("kurz_redirects_total", outcome="redirected", path="fast") == 1
    assert delta("kurz_redirects_total", outcome="missing", path="full") == 1
    assert delta("kurz_redirects_total", outcome="limited", path="fast") == 1
    assert delta("kurz_ratelimit_refusals_total", policy="redirect") == 1
    assert delta("kurz_cache_requests_total", tier="l1", result="hit") == 2
    scaled = deployment.name == "scaled"
    # Each full-path visit read L1 twice (the fast path, then the cache's own read).
    assert delta("kurz_cache_requests_total", tier="l2", result="miss") == (2 if scaled else 0)
    assert delta("kurz_cache_requests_total", tier="l2", result="hit") == 0
    assert delta("kurz_cache_requests_total", tier="database", result="hit") == 1
    assert delta("kurz_cache_requests_total", tier="database", result="miss") == 1

    create = {"route": "/api/v1/links", "method": "POST", "status": "201"}
    assert delta("kurz_http_requests_total", **create) == 2
    assert delta("kurz_http_request_duration_seconds_count", route="/api/v1/links") == 2
    assert (
        value(after, "kurz_http_request_duration_seconds_bucket", route="/api/v1/links", le="+Inf")
        == 2
    )
    # The first scrape is counted by the time of the second.
    assert (
        value(after, "kurz_http_requests_total", route="/metrics", method="GET", status="200") == 1
    )
    # Redirects are answered before FastAPI; the 404 and the 429 are rendered by its
    # `follow` route.
    visits = {
        (dict(labels)["route"], dict(labels)["status"]): n
        for (name, labels), n in after.items()
        if name == "kurz_http_requests_total"
        and dict(labels)["route"] != "/metrics"
        and dict(labels)["route"] != "/api/v1/links"
    }
    assert visits == {("/{code}", "404"): 1, ("/{code}", "429"): 1}

    assert value(after, "process_cpu_seconds_total") > 0
    assert value(after, "kurz_jobs_oldest_due_seconds") >= 0


async def test_jobs_are_counted_by_state_and_the_oldest_due_age(
    app: FastAPI, make_key: KeyMaker, clock: FakeClock
) -> None:
    jobs: JobStore = app.state.kurz.jobs
    await jobs.enqueue("nothing", {}, queue="metrics-test")
    clock.advance(90)
    await jobs.enqueue("nothing", {}, queue="metrics-test")
    await jobs.enqueue("nothing", {}, queue="metrics-test", delay=3600)
    secret = await make_key("prometheus", admin=True)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=BASE_URL,
        headers={"Authorization": f"Bearer {secret}"},
    ) as api:
        scraped = await scrape(api)
    assert value(scraped, "kurz_jobs", queue="metrics-test", state="queued") == 3
    assert value(scraped, "kurz_jobs_oldest_due_seconds") == 90


DOCS = Path(__file__).parents[2] / "docs"


async def test_docs_list_every_metric_and_the_dashboard_asks_only_for_those(
    deployment: Deployment, clock: FakeClock
) -> None:
    settings = deployment.settings(analytics=True, embedded_worker=True)
    async with running(settings, clock) as app:
        async with app.state.kurz.db.write(READ_COMMITTED) as conn:
            created = await key_queries.create(
                conn=conn,
                key_in=ApiKeyCreate(name="prometheus", scopes=scopes_for(admin=True)),
                now=utcnow(clock),
            )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=BASE_URL,
            headers={"Authorization": f"Bearer {created.secret}"},
        ) as api:
            text = (await api.get("/metrics")).text
    families = {family.name for family in text_string_to_metric_families(text)}
    documented = (DOCS / "metrics.md").read_text()
    assert "kurz_worker_jobs" in families
    assert {name for name in families if f"`{name}" not in documented} == set()
    dashboard = (DOCS / "grafana" / "kurz.json").read_text()
    asked = set(re.findall(r"\b((?:kurz|process)_[a-z0-9_]+?)(?:_bucket|_total)?\b", dashboard))
    assert asked
    assert {name for name in asked if f"`{name}" not in documented} == set()
