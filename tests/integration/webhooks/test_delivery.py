"""Deliveries against real receivers: retried with backoff, dead-lettered, redelivered;
signed as the Standard Webhooks specification says; enqueued with the change."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook

from kurz.auth.models import Principal, scopes_for
from kurz.bootstrap import Parts
from kurz.clock import utcnow
from kurz.db import READ_COMMITTED
from kurz.db.tables import jobs, webhook_deliveries, webhook_endpoints
from kurz.jobs import Worker
from kurz.links import queries as link_queries
from kurz.links.codes import cache_key
from kurz.links.models import LinkCreate
from kurz.webhooks.scheduled import RetrySchedule
from tests.integration.webhooks.conftest import TIMEOUT
from tests.integration.webhooks.receiver import Answer, Receiver, receiving
from tests.integration.webhooks.support import (
    HOOKS,
    LINKS,
    deliveries,
    register,
    settle,
    to_next_attempt,
)
from tests.support import FakeClock, free_port

PATIENCE = 60.0


async def counts(parts: Parts) -> tuple[int, int]:
    async with parts.db.read() as conn:
        sent = await conn.execute(sa.select(sa.func.count()).select_from(webhook_deliveries))
        queued = await conn.execute(
            sa.select(sa.func.count()).select_from(jobs).where(jobs.c.queue == "webhooks")
        )
        return sent.scalar_one(), queued.scalar_one()


async def owner(parts: Parts, hook: dict[str, Any]) -> Principal:
    async with parts.db.read() as conn:
        user_id = (
            await conn.execute(
                sa.select(webhook_endpoints.c.user_id).where(webhook_endpoints.c.id == hook["id"])
            )
        ).scalar_one()
    return Principal(user_id, "member", frozenset(scopes_for()), "test")


async def test_a_rolled_back_change_sends_nothing_and_a_committed_one_is_delivered(
    api: httpx.AsyncClient, parts: Parts, worker: Worker, receiver: Receiver, clock: FakeClock
) -> None:
    hook = await register(api, receiver.url)
    principal = await owner(parts, hook)

    async def change_then_fail() -> None:
        async with parts.db.write(READ_COMMITTED) as conn:
            link = await link_queries.create(
                conn=conn,
                link_in=LinkCreate(url="https://example.com/never"),
                domain_id=0,
                owner=principal,
                now=utcnow(clock),
                base_url=parts.settings.base_url,
                own=parts.own_origins,
                password_hash=None,
            )
            await parts.outbox.changed(conn, event="link.created", keys=[cache_key(0, link.code)])
            inside = await conn.execute(sa.select(sa.func.count()).select_from(webhook_deliveries))
            assert inside.scalar_one() == 1
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        await change_then_fail()
    assert await counts(parts) == (0, 0)
    await settle(worker)
    assert receiver.requests == []

    made = (await api.post(LINKS, json={"url": "https://example.com/kept"})).json()
    assert await counts(parts) == (1, 1)
    await settle(worker)
    [received] = receiver.requests
    event = received.verified(hook["secret"])
    assert event["type"] == "link.created"
    assert event["data"]["code"] == made["code"]
    assert event["data"]["url"] == "https://example.com/kept"
    assert event["timestamp"] == clock.iso().replace("+00:00", "Z")
    assert received.headers["content-type"] == "application/json"
    [delivery] = await deliveries(api, hook)
    assert delivery["status"] == "delivered"
    assert delivery["message_id"] == received.message_id
    assert (delivery["attempts"], delivery["last_status"]) == (1, 200)


async def test_a_receiver_that_fails_twice_gets_the_same_message_a_third_time(
    api: httpx.AsyncClient, worker: Worker, receiver: Receiver, clock: FakeClock
) -> None:
    hook = await register(api, receiver.url, ("link.created", "link.updated"))
    receiver.answers = [Answer(500, b"oops"), Answer(503)]
    await api.post(LINKS, json={"url": "https://example.com/retried"})
    await settle(worker)
    [delivery] = await deliveries(api, hook)
    assert delivery["status"] == "pending"
    assert (delivery["attempts"], delivery["last_status"]) == (1, 500)
    assert delivery["last_error"] == "HTTP 500: oops"
    schedule = RetrySchedule()
    waits = []
    for _ in range(2):
        waits.append(await to_next_attempt(api, hook, clock))
        await settle(worker)
    # Each wait is its step of the schedule, give or take the jitter.
    for step, waited in zip(schedule.delays(), waits, strict=False):
        assert step * 0.8 <= waited <= step * 1.2
    assert len(receiver.requests) == 3
    assert len({received.message_id for received in receiver.requests}) == 1
    stamps = [int(received.headers["webhook-timestamp"]) for received in receiver.requests]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == 3
    for received in receiver.requests:
        assert received.verified(hook["secret"])["type"] == "link.created"
    [delivery] = await deliveries(api, hook)
    assert (delivery["status"], delivery["attempts"], delivery["last_status"]) == (
        "delivered",
        3,
        200,
    )
    assert delivery["last_error"] is None
    assert delivery["next_attempt_at"] is None


async def test_a_receiver_that_hangs_times_out_and_is_tried_again(
    api: httpx.AsyncClient, worker: Worker, receiver: Receiver, clock: FakeClock
) -> None:
    hook = await register(api, receiver.url)
    receiver.answers = [Answer(hang=True)]
    await api.post(LINKS, json={"url": "https://example.com/slow"})
    await settle(worker)
    [delivery] = await deliveries(api, hook)
    assert delivery["status"] == "pending"
    assert delivery["last_error"] == f"timed out after {TIMEOUT:g} s"
    assert delivery["last_status"] is None
    await to_next_attempt(api, hook, clock)
    await settle(worker)
    assert len(receiver.requests) == 2
    [delivery] = await deliveries(api, hook)
    assert delivery["status"] == "delivered"


async def test_a_receiver_that_is_down_for_a_while_gets_it_when_it_is_up(
    api: httpx.AsyncClient, worker: Worker, clock: FakeClock
) -> None:
    port = free_port()
    hook = await register(api, f"http://127.0.0.1:{port}/hook")
    await api.post(LINKS, json={"url": "https://example.com/later"})
    await settle(worker)
    await to_next_attempt(api, hook, clock)
    await settle(worker)
    [delivery] = await deliveries(api, hook)
    assert (delivery["status"], delivery["attempts"]) == ("pending", 2)
    assert delivery["last_error"].startswith("could not connect")
    async with receiving(port) as receiver:
        await to_next_attempt(api, hook, clock)
        await settle(worker)
        [received] = receiver.requests
        assert received.verified(hook["secret"])["type"] == "link.created"
    [delivery] = await deliveries(api, hook)
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 3)


async def test_a_delivery_out_of_attempts_is_dead_then_redelivered_by_hand(
    api: httpx.AsyncClient, worker: Worker, receiver: Receiver, clock: FakeClock
) -> None:
    hook = await register(api, receiver.url)
    receiver.answers = [Answer(502, b"bad gateway")] * 9
    await api.post(LINKS, json={"url": "https://example.com/dead"})
    start = clock.now
    await settle(worker)
    for _ in range(8):
        await to_next_attempt(api, hook, clock)
        await settle(worker)
    # Nine attempts over about a day.
    assert 17 * 3_600 <= clock.now - start <= 26.1 * 3_600
    [delivery] = await deliveries(api, hook)
    assert delivery["status"] == "dead"
    assert (delivery["attempts"], delivery["last_status"]) == (9, 502)
    assert delivery["last_error"] == "HTTP 502: bad gateway"
    assert delivery["next_attempt_at"] is None
    dead = await api.get(f"{HOOKS}/{hook['id']}/deliveries", params={"status": "dead"})
    assert [item["id"] for item in dead.json()["items"]] == [delivery["id"]]
    clock.advance(86_400)
    await settle(worker)
    assert len(receiver.requests) == 9

    again = await api.post(f"{HOOKS}/{hook['id']}/deliveries/{delivery['id']}/redeliver")
    assert again.status_code == 202, again.text
    assert again.json()["status"] == "pending"
    twice = await api.post(f"{HOOKS}/{hook['id']}/deliveries/{delivery['id']}/redeliver")
    assert twice.status_code == 409
    await settle(worker)
    assert len(receiver.requests) == 10
    assert len({received.message_id for received in receiver.requests}) == 1
    [delivery] = await deliveries(api, hook)
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 10)


async def test_a_redirect_is_not_followed(
    api: httpx.AsyncClient, worker: Worker, receiver: Receiver
) -> None:
    hook = await register(api, receiver.url)
    elsewhere = receiver.url.replace("/hook", "/elsewhere")
    receiver.answers = [Answer(307, headers={"Location": elsewhere})]
    await api.post(LINKS, json={"url": "https://example.com/moved"})
    await settle(worker)
    assert [received.path for received in receiver.requests] == ["/hook"]
    [delivery] = await deliveries(api, hook)
    assert delivery["last_status"] == 307
    assert delivery["last_error"] == "HTTP 307 (redirects are not followed)"


async def test_an_endless_answer_is_read_only_up_to_the_cap(
    api: httpx.AsyncClient, worker: Worker, receiver: Receiver
) -> None:
    hook = await register(api, receiver.url)
    receiver.answers = [Answer(endless=True)]
    await api.post(LINKS, json={"url": "https://example.com/talkative"})
    await asyncio.wait_for(settle(worker), PATIENCE)
    [delivery] = await deliveries(api, hook)
    # Read up to 64 KiB, then left: a 200, before any timeout.
    assert (delivery["status"], delivery["last_status"]) == ("delivered", 200)


async def test_the_signature_verifies_with_the_package_on_the_real_clock(
    api: httpx.AsyncClient, worker: Worker, receiver: Receiver, clock: FakeClock
) -> None:
    # Receivers check webhook-timestamp against their own clock (5 minutes either way).
    clock.now = time.time()
    hook = await register(api, receiver.url)
    await api.post(LINKS, json={"url": "https://example.com/now"})
    await settle(worker)
    [received] = receiver.requests
    # What a receiver runs, timestamp tolerance and all.
    event = Webhook(hook["secret"]).verify(received.body, received.headers)
    assert event["type"] == "link.created"
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "QUJD" * 8).verify(received.body, received.headers)
