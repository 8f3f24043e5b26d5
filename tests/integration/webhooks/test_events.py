"""Each event, from the change that makes it to the receiver: links changed, deleted,
expired and retired; clicks in rounds of at most one a second; an import's end."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import sqlalchemy as sa

from kurz.analytics.events import click_event
from kurz.analytics.store import Batch, ClickStore
from kurz.auth.models import Principal
from kurz.bootstrap import Parts
from kurz.db.tables import links, webhook_deliveries, webhook_endpoints
from kurz.imports.service import Imports
from kurz.imports.sources import Record
from kurz.jobs import Worker
from kurz.links.scheduled import announce_expired, retire_expired
from kurz.webhooks import Clicks
from kurz.webhooks.clicks import MAX_CLICKS
from tests.conftest import KeyMaker
from tests.integration.imports.support import listed_kind
from tests.integration.webhooks.receiver import Receiver
from tests.integration.webhooks.support import HOOKS, LINKS, deliveries, register, settle
from tests.support import FakeClock

ALL = ("link.created", "link.updated", "link.deleted", "link.expired", "link.clicked")


async def test_changes_and_deletions_arrive_in_order_with_the_link(
    api: httpx.AsyncClient, worker: Worker, receiver: Receiver
) -> None:
    hook = await register(api, receiver.url, ("link.updated", "link.deleted"))
    code = (await api.post(LINKS, json={"url": "https://example.com/a"})).json()["code"]
    one = f"{LINKS}/{code}"
    await api.patch(one, json={"url": "https://example.com/b"}, headers={"If-Match": "*"})
    await settle(worker)
    await api.delete(one)
    await settle(worker)
    events = [received.verified(hook["secret"]) for received in receiver.requests]
    # link.created was not asked for.
    assert [event["type"] for event in events] == ["link.updated", "link.deleted"]
    assert events[0]["data"]["url"] == "https://example.com/b"
    assert events[1]["data"]["code"] == code
    assert events[1]["data"]["version"] == events[0]["data"]["version"] + 1


async def test_each_link_of_a_batch_is_announced_and_a_refused_one_is_not(
    api: httpx.AsyncClient, worker: Worker, receiver: Receiver
) -> None:
    hook = await register(api, receiver.url)
    made = await api.post(
        f"{LINKS}/batch",
        json={"links": [
            {"url": "https://example.com/one", "alias": "batch-one"},
            {"url": "not a url"},
            {"url": "https://example.com/two", "alias": "batch-two"},
        ]},
    )  # fmt: skip
    assert made.status_code == 200, made.text
    await settle(worker)
    events = [received.verified(hook["secret"]) for received in receiver.requests]
    assert sorted(event["data"]["code"] for event in events) == ["batch-one", "batch-two"]
    assert {event["type"] for event in events} == {"link.created"}


async def test_another_users_links_and_a_disabled_webhook_send_nothing(
    api: httpx.AsyncClient,
    worker: Worker,
    receiver: Receiver,
    make_key: KeyMaker,
    client_for: Callable[[str], httpx.AsyncClient],
) -> None:
    hook = await register(api, receiver.url)
    async with client_for(await make_key("bob")) as bob:
        await bob.post(LINKS, json={"url": "https://example.com/bobs"})
    await api.patch(f"{HOOKS}/{hook['id']}", json={"enabled": False})
    await api.post(LINKS, json={"url": "https://example.com/while-off"})
    await api.patch(f"{HOOKS}/{hook['id']}", json={"enabled": True})
    await api.post(LINKS, json={"url": "https://example.com/on"})
    await settle(worker)
    [received] = receiver.requests
    assert received.verified(hook["secret"])["data"]["url"] == "https://example.com/on"


async def test_an_expiry_is_announced_once_when_it_passes_and_retiring_deletes(
    api: httpx.AsyncClient, parts: Parts, worker: Worker, receiver: Receiver, clock: FakeClock
) -> None:
    hook = await register(api, receiver.url, ("link.expired", "link.deleted"))
    expires = clock.iso(600)
    code = (
        await api.post(LINKS, json={"url": "https://example.com/x", "expires_at": expires})
    ).json()["code"]
    await api.post(LINKS, json={"url": "https://example.com/y", "expires_at": clock.iso(7_200)})
    told = await announce_expired(db=parts.db, clock=clock, events=parts.outbox)
    assert told == 0
    clock.advance(601)
    assert await announce_expired(db=parts.db, clock=clock, events=parts.outbox) == 1
    # Told once, however often the sweep runs.
    assert await announce_expired(db=parts.db, clock=clock, events=parts.outbox) == 0
    await settle(worker)
    [received] = receiver.requests
    event = received.verified(hook["secret"])
    assert event["type"] == "link.expired"
    assert event["data"]["code"] == code
    assert event["data"]["expires_at"] == expires.replace("+00:00", "Z")

    clock.advance(parts.settings.expired_link_grace + 60)
    assert (
        await retire_expired(
            db=parts.db, clock=clock, grace=parts.settings.expired_link_grace, events=parts.outbox
        )
        == 1
    )
    await settle(worker)
    types = [r.verified(hook["secret"])["type"] for r in receiver.requests]
    # The second link expired meanwhile (the worker's sweep), and the first was retired.
    assert sorted(types) == ["link.deleted", "link.expired", "link.expired"]


async def test_an_import_s_end_goes_to_its_user(
    api: httpx.AsyncClient, parts: Parts, worker: Worker, receiver: Receiver, clock: FakeClock
) -> None:
    hook = await register(api, receiver.url, ("import.finished",))
    async with parts.db.read() as conn:
        user_id = (
            await conn.execute(
                sa.select(webhook_endpoints.c.user_id).where(webhook_endpoints.c.id == hook["id"])
            )
        ).scalar_one()
    imports = Imports(
        db=parts.db,
        jobs=parts.jobs,
        clock=parts.clock,
        links=parts.links,
        outbox=parts.outbox,
        max_bytes=1024,
        allow_private=False,
        kinds={"listed": listed_kind([[Record("row 1", "1", "https://example.com/")]])},
    )
    owner = Principal(user_id=user_id, role="member", scopes=frozenset(), name="alice")
    started = await imports.start(principal=owner, kind="listed", settings={}, enqueue=False)
    await imports.run(started.id)
    async with parts.db.read() as conn:
        message = (
            await conn.execute(
                sa.select(webhook_deliveries.c.message_id).where(
                    webhook_deliveries.c.event == "import.finished"
                )
            )
        ).scalar_one()
    await settle(worker)
    [received] = receiver.requests
    assert received.message_id == message
    event = received.verified(hook["secret"])
    assert event["type"] == "import.finished"
    assert event["data"]["id"] == started.id
    assert (event["data"]["imported"], event["data"]["skipped"]) == (1, 0)
    assert (event["data"]["status"], event["data"]["source"]) == ("finished", "listed")


def clicks_of(parts: Parts) -> tuple[ClickStore, Clicks]:
    clicks = Clicks(
        db=parts.db,
        jobs=parts.jobs,
        outbox=parts.outbox,
        clock=parts.clock,
        base_url=parts.settings.base_url,
    )
    return ClickStore(parts.db, follower=clicks.recorded), clicks


async def link_id(parts: Parts, code: str) -> int:
    async with parts.db.read() as conn:
        found = await conn.execute(sa.select(links.c.id).where(links.c.code == code))
        return int(found.scalar_one())


async def test_clicks_go_in_rounds_of_at_most_one_a_second(
    api: httpx.AsyncClient, parts: Parts, worker: Worker, receiver: Receiver, clock: FakeClock
) -> None:
    hook = await register(api, receiver.url, ("link.clicked",))
    code = (await api.post(LINKS, json={"url": "https://example.com/c"})).json()["code"]
    link = await link_id(parts, code)
    store, _ = clicks_of(parts)

    def click(n: int) -> Batch:
        event = click_event(
            link_id=link, at=clock.now, browser="Firefox", os="Linux", device="desktop",
            bot=False, visitor=f"v{n}", country="DE",
        )  # fmt: skip
        return (f"batch-{n}", [event])

    await store.record([click(1)])
    await store.record([click(2)])
    await settle(worker)
    [first] = receiver.requests
    event = first.verified(hook["secret"])
    assert event["type"] == "link.clicked"
    assert event["data"]["count"] == 2
    assert {c["code"] for c in event["data"]["clicks"]} == {code}
    assert event["data"]["clicks"][0]["country"] == "DE"
    assert "visitor" not in event["data"]["clicks"][0]

    # Within the second after a round: the next waits for the second to pass.
    clock.advance(0.4)
    await store.record([click(3)])
    await store.record([click(4)])
    await settle(worker)
    assert len(receiver.requests) == 1
    clock.advance(0.6)
    await settle(worker)
    assert len(receiver.requests) == 2
    assert receiver.requests[1].verified(hook["secret"])["data"]["count"] == 2
    # A batch recorded again (a retried write) is not counted, nor sent, twice.
    await store.record([click(4)])
    clock.advance(5)
    await settle(worker)
    assert len(receiver.requests) == 2


async def test_a_burst_beyond_a_delivery_is_sent_over_the_following_seconds(
    api: httpx.AsyncClient, parts: Parts, worker: Worker, receiver: Receiver, clock: FakeClock
) -> None:
    hook = await register(api, receiver.url, ALL)
    code = (await api.post(LINKS, json={"url": "https://example.com/busy"})).json()["code"]
    link = await link_id(parts, code)
    store, _ = clicks_of(parts)
    burst = [
        click_event(
            link_id=link,
            at=clock.now,
            browser="B",
            os="O",
            device="mobile",
            bot=False,
            visitor=str(n),
        )
        for n in range(MAX_CLICKS + 5)
    ]
    await store.record([("burst", burst)])
    await settle(worker)
    clock.advance(1)
    await settle(worker)
    events = [r.verified(hook["secret"]) for r in receiver.requests]
    assert [e["type"] for e in events] == ["link.created", "link.clicked", "link.clicked"]
    assert [e["data"]["count"] for e in events[1:]] == [MAX_CLICKS, 5]
    assert all(item["status"] == "delivered" for item in await deliveries(api, hook))
