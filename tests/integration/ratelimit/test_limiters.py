"""One suite, every backend: the in-process and the Redis limiter answer alike."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from kurz.ratelimit import Limiter, MemoryLimiter, Policy, RedisLimiter, parse_policy
from tests.support import FakeClock

POLICY = Policy("api", limit=10, window=10, burst=5)  # a token a second, 5 at once


@pytest.fixture
async def redis(redis_available: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_available)
    yield client
    await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[Limiter]:
    if request.param == "memory":
        yield MemoryLimiter(clock)
        return
    client = Redis.from_url(request.getfixturevalue("redis_available"))
    prefix = f"kurz-test:{uuid.uuid4().hex}:"
    try:
        yield RedisLimiter(client, prefix=prefix, clock=clock)
        keys = [key async for key in client.scan_iter(f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def test_a_full_bucket_allows_the_burst_then_refuses(limiter: Limiter) -> None:
    decisions = [await limiter.check(POLICY, "k") for _ in range(7)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0, 0]
    denied = decisions[-1]
    assert denied.retry_after == pytest.approx(1.0)
    assert denied.window == 1


async def test_tokens_come_back_at_the_rate(limiter: Limiter, clock: FakeClock) -> None:
    for _ in range(5):
        assert (await limiter.check(POLICY, "k")).allowed
    assert not (await limiter.check(POLICY, "k")).allowed
    clock.advance(0.999)
    assert not (await limiter.check(POLICY, "k")).allowed
    clock.advance(0.001)
    assert (await limiter.check(POLICY, "k")).allowed
    clock.advance(2.5)
    decision = await limiter.check(POLICY, "k")
    assert decision.allowed
    assert decision.remaining == 1


async def test_reset_after_is_when_the_bucket_is_full_again(
    limiter: Limiter, clock: FakeClock
) -> None:
    first = await limiter.check(POLICY, "k")
    assert first.reset_after == pytest.approx(1.0)
    assert first.window == 1  # remaining 4: t is the time until full
    for _ in range(2):
        await limiter.check(POLICY, "k")
    third = await limiter.check(POLICY, "k")
    assert third.reset_after == pytest.approx(4.0)
    clock.advance(4.0)
    assert (await limiter.check(POLICY, "k")).remaining == 4


async def test_keys_and_policies_are_independent(limiter: Limiter) -> None:
    other = Policy("redirect", limit=10, window=10, burst=5)
    for _ in range(5):
        assert (await limiter.check(POLICY, "a")).allowed
    assert not (await limiter.check(POLICY, "a")).allowed
    assert (await limiter.check(POLICY, "b")).allowed
    assert (await limiter.check(other, "a")).allowed


async def test_cost_takes_several_tokens(limiter: Limiter) -> None:
    assert (await limiter.check(POLICY, "k", cost=3)).remaining == 2
    assert not (await limiter.check(POLICY, "k", cost=3)).allowed
    assert (await limiter.check(POLICY, "k", cost=2)).allowed


async def test_a_denied_check_takes_nothing(limiter: Limiter, clock: FakeClock) -> None:
    for _ in range(5):
        await limiter.check(POLICY, "k")
    for _ in range(50):
        assert not (await limiter.check(POLICY, "k")).allowed
    clock.advance(1.0)
    assert (await limiter.check(POLICY, "k")).allowed


async def test_burst_one_spaces_requests_evenly(limiter: Limiter, clock: FakeClock) -> None:
    policy = parse_policy("strict", "2/1s;burst=1")
    assert policy is not None
    allowed = []
    for _ in range(20):
        allowed.append((await limiter.check(policy, "k")).allowed)
        clock.advance(0.25)
    assert allowed == [True, False] * 10


async def test_redis_uses_its_own_clock_when_none_is_given(redis: Redis) -> None:
    limiter = RedisLimiter(redis, prefix=f"kurz-test:{uuid.uuid4().hex}:")
    policy = Policy("slow", limit=1, window=3600, burst=2)
    first, second, third = [await limiter.check(policy, "k") for _ in range(3)]
    assert (first.allowed, second.allowed, third.allowed) == (True, True, False)
    assert 3598 < third.retry_after <= 3600
    ttl = await redis.pttl(f"{limiter._prefix}slow:k")
    assert 7_190_000 < ttl <= 7_200_000  # the key lives as long as the bucket is not full
    await redis.delete(f"{limiter._prefix}slow:k")


async def test_redis_recovers_from_a_flushed_script_cache(redis: Redis, clock: FakeClock) -> None:
    limiter = RedisLimiter(redis, prefix=f"kurz-test:{uuid.uuid4().hex}:", clock=clock)
    assert (await limiter.check(POLICY, "k")).allowed
    await redis.script_flush()
    assert (await limiter.check(POLICY, "k")).remaining == 3
    await redis.delete(f"{limiter._prefix}api:k")


def test_memory_limiter_is_bounded(clock: FakeClock) -> None:
    limiter = MemoryLimiter(clock, max_keys=100)
    for i in range(10_000):
        limiter.check_now(POLICY, f"flood-{i}")
    assert len(limiter) == 100
    # The most recently checked keys are the ones kept.
    assert limiter.check_now(POLICY, "flood-9999").remaining == 3


def test_memory_limiter_forgets_full_buckets(clock: FakeClock) -> None:
    limiter = MemoryLimiter(clock)
    limiter.check_now(POLICY, "k")  # one token used: full again in 1 s
    clock.advance(0.5)
    limiter.check_now(POLICY, "other")
    assert len(limiter) == 2  # k is not full yet, so it is kept
    clock.advance(0.7)  # t=1.2: k's bucket is full again (at 1.0), other's not (1.5)
    limiter.check_now(POLICY, "third")
    assert len(limiter) == 2  # k drained; other and third kept
    clock.advance(2.0)
    limiter.check_now(POLICY, "last")
    assert len(limiter) == 1  # other and third are full too
    assert limiter.check_now(POLICY, "k").remaining == 4  # k starts full, as if never seen


async def test_a_peek_answers_as_a_check_would_and_takes_nothing(
    limiter: Limiter, clock: FakeClock
) -> None:
    for _ in range(4):
        peeked = await limiter.peek(POLICY, "k")
        assert peeked == await limiter.check(POLICY, "k")
        assert peeked.allowed
    for _ in range(10):
        assert (await limiter.peek(POLICY, "k")).allowed  # the last token, never taken
    assert (await limiter.check(POLICY, "k")).allowed
    blocked = await limiter.peek(POLICY, "k")
    assert not blocked.allowed
    assert blocked == await limiter.check(POLICY, "k")
    assert blocked.retry_after == pytest.approx(1.0)
    clock.advance(1.0)
    assert (await limiter.peek(POLICY, "k")).allowed
    assert (await limiter.peek(POLICY, "unseen")).remaining == 4
    assert (await limiter.peek(POLICY, "unseen", cost=6)).allowed is False
