"""Any interleaving of retries gives only the outcomes the Idempotency-Key draft allows."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

import httpx
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kurz.db import Database

LINKS = "/api/v1/links"
_examples = itertools.count()

# Rounds of requests; the requests of one round are sent at once. A request is
# (key, payload), each from a small pool so that keys and payloads repeat.
rounds = st.lists(
    st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=1, max_size=6),
    min_size=1,
    max_size=5,
)


@dataclass
class KeyHistory:
    """What one key has answered so far."""

    payload: int | None = None  # the payload of the request that ran
    body: bytes = b""
    ran: int = 0
    outcomes: list[str] = field(default_factory=list)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(plan=rounds)
async def test_retries_in_any_interleaving(
    plan: list[list[tuple[int, int]]], api: httpx.AsyncClient, db: Database
) -> None:
    example = next(_examples)
    tag = f"ex{example}"
    history = {key: KeyHistory() for key in range(3)}

    async def send(key: int, payload: int) -> tuple[int, int, httpx.Response]:
        response = await api.post(
            LINKS,
            json={"url": f"https://example.com/{payload}", "tags": [tag]},
            headers={"Idempotency-Key": f'"ex{example}-k{key}"'},
        )
        return key, payload, response

    for requests in plan:
        stored_before = {k: h.payload for k, h in history.items()}
        answers = await asyncio.gather(*(send(k, p) for k, p in requests))
        for key, payload, response in answers:
            h = history[key]
            status = response.status_code
            replayed = response.headers.get("idempotent-replayed") == "true"
            if status == 201 and not replayed:
                h.ran += 1
                h.payload, h.body = payload, response.content
                assert stored_before[key] is None, "ran again after its response was stored"
                h.outcomes.append("ran")
            elif status == 201:
                h.outcomes.append("replayed")
            elif status == 422:
                assert response.json()["type"] == "/problems/idempotency-key-reused"
                h.outcomes.append("reused")
            else:
                assert status == 409, response.text
                assert response.json()["type"] == "/problems/idempotency-key-in-use"
                # Only a request racing the first one for its key can find it in flight,
                # and SQLite's single writer makes even that wait instead.
                assert stored_before[key] is None
                assert not db.is_sqlite
                h.outcomes.append("in flight")
        for key, payload, response in answers:
            h = history[key]
            assert h.ran <= 1
            if response.status_code == 201 and response.headers.get("idempotent-replayed"):
                assert payload == h.payload
                assert response.content == h.body
            if response.status_code == 422:
                assert h.payload is not None
                assert payload != h.payload
            if stored_before[key] is not None:
                # Once stored, the answer is decided by the payload alone.
                expected = "replayed" if payload == stored_before[key] else "reused"
                assert (response.status_code == 201) == (expected == "replayed")
        # Whoever held a key's lock finished: a key sent in a round never only waits.
        for key in {k for k, _ in requests}:
            statuses = [r.status_code for k, _, r in answers if k == key]
            assert any(s != 409 for s in statuses)
    async with db.read() as conn:
        made = (
            await conn.exec_driver_sql(
                "SELECT count(*) FROM link_tags WHERE tag = ?"
                if db.is_sqlite
                else "SELECT count(*) FROM link_tags WHERE tag = $1",
                (tag,),
            )
        ).scalar_one()
    assert made == sum(h.ran for h in history.values())
    for h in history.values():
        for outcome in set(h.outcomes):
            event(outcome)
