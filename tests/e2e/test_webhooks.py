"""Webhooks end to end: `kurz serve` takes the changes, `kurz worker` processes send
them, and one worker is SIGKILLed in the middle of a delivery. Every event arrives at
least once, signed, with a webhook-id to de-duplicate by; none is lost."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import httpx

from tests.e2e.support import KURZ, PATIENCE, Server, kurz_env, new_key
from tests.integration.webhooks.receiver import Answer, receiving

LINKS = 5


class Worker:
    """A `kurz worker` process, logging to a file of its own."""

    def __init__(self, cwd: Path, env: dict[str, str], name: str) -> None:
        self.log = cwd / f"{name}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [KURZ, "worker"], env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def delivered(api: httpx.AsyncClient, hook: int, count: int) -> list[dict[str, object]]:
    """The webhook's deliveries once `count` of them are delivered (a bounded poll of
    the API: the test has no other way to see a worker record an answer); a hang fails
    after PATIENCE seconds instead of waiting for ever."""
    deadline = time.monotonic() + PATIENCE
    while True:
        items: list[dict[str, object]] = (
            await api.get(f"/api/v1/webhooks/{hook}/deliveries", params={"limit": 100})
        ).json()["items"]
        done = sum(item["status"] == "delivered" for item in items)
        if done >= count:
            return items
        assert time.monotonic() < deadline, f"only {done} of {count} deliveries made: {items}"
        await asyncio.sleep(0.1)


async def test_a_worker_killed_mid_delivery_loses_no_event(
    tmp_path: Path, database_url: str
) -> None:
    env = kurz_env(
        KURZ_DATABASE_URL=database_url,
        KURZ_RATELIMIT_API="off",
        KURZ_ANALYTICS="false",
        KURZ_EMBEDDED_WORKER="false",
        KURZ_WEBHOOK_ALLOW_PRIVATE="true",
        KURZ_WEBHOOK_KEY="an e2e key of at least thirty-two characters",
        # Long past the hang: the worker is killed while it waits for the answer.
        KURZ_WEBHOOK_TIMEOUT="120",
        # A killed worker's job runs elsewhere this soon.
        KURZ_WORKER_LEASE="2",
    )
    server = Server(tmp_path, env)
    workers: list[Worker] = []
    async with receiving() as receiver:
        try:
            await asyncio.to_thread(server.wait_ready)
            secret = await asyncio.to_thread(new_key, server.env, tmp_path, "ops", admin=True)
            async with httpx.AsyncClient(
                base_url=server.url, headers={"Authorization": f"Bearer {secret}"}, timeout=30
            ) as api:
                made = await api.post(
                    "/api/v1/webhooks", json={"url": receiver.url, "events": ["link.created"]}
                )
                assert made.status_code == 201, made.text
                hook = made.json()
                # The first delivery to arrive is never answered.
                receiver.answers = [Answer(hang=True)]
                for n in range(LINKS):
                    created = await api.post("/api/v1/links", json={"url": f"https://e.com/{n}"})
                    assert created.status_code == 201, created.text

                workers.append(doomed := Worker(tmp_path, server.env, "doomed"))
                await asyncio.wait_for(receiver.wait_for(1), PATIENCE)
                doomed.kill()
                workers.append(Worker(tmp_path, server.env, "rescuer"))
                items = await asyncio.wait_for(delivered(api, hook["id"], LINKS), PATIENCE)

            messages = {str(item["message_id"]) for item in items}
            assert len(messages) == LINKS
            # Each at least once; the one whose worker died, twice, under one webhook-id.
            received = [r.message_id for r in receiver.requests]
            assert set(received) == messages
            hung = receiver.requests[0].message_id
            assert received.count(hung) == 2
            for request in receiver.requests:
                assert request.verified(hook["secret"])["type"] == "link.created"
            codes = {r.verified(hook["secret"])["data"]["url"] for r in receiver.requests}
            assert codes == {f"https://e.com/{n}" for n in range(LINKS)}
        finally:
            for worker in workers:
                worker.stop()
            server.stop()
