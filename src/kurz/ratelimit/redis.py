"""The Redis limiter: one atomic Lua call per check, on Redis's own clock."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kurz.ratelimit.gcra import Decision, decide
from kurz.ratelimit.policy import Policy
from kurz.types import Clock

if TYPE_CHECKING:
    from redis.asyncio import Redis

# The same arithmetic as kurz.ratelimit.gcra.step, with its EPSILON. It reads the time
# from Redis, so every kurz process shares one clock however far apart their own
# clocks are; a test may pass ARGV[4] instead. ARGV[5] '1' only peeks: the answer a
# check would get, with nothing taken. The reply is strings: Redis would truncate Lua
# numbers to integers. The key expires when its bucket is full again, since it then
# says nothing.
_SCRIPT = """
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now
if ARGV[4] ~= nil and ARGV[4] ~= '' then
  now = tonumber(ARGV[4])
else
  local time = redis.call('TIME')
  now = tonumber(time[1]) + tonumber(time[2]) / 1000000
end
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
  tat = now
end
local new_tat = tat + cost * interval
local allowed = 0
if new_tat - now <= capacity + 0.000001 then
  allowed = 1
  tat = new_tat
  if ARGV[5] ~= '1' then
    redis.call('SET', KEYS[1], string.format('%.17g', tat),
               'PX', math.max(1, math.ceil((tat - now) * 1000)))
  end
end
return {allowed, string.format('%.17g', tat - now)}
"""


class RedisLimiter:
    """GCRA in Redis, shared by every kurz process that uses the same Redis."""

    def __init__(self, redis: Redis, *, prefix: str = "kurz:rl:", clock: Clock | None = None):
        self._redis = redis
        self._prefix = prefix
        # Only tests set a clock; production uses Redis's TIME.
        self._clock = clock
        # redis-py's Script sends EVALSHA and reloads the script on NOSCRIPT.
        self._script = redis.register_script(_SCRIPT)

    async def check(self, policy: Policy, key: str, cost: int = 1) -> Decision:
        return await self._run(policy, key, cost, peek=False)

    async def peek(self, policy: Policy, key: str, cost: int = 1) -> Decision:
        return await self._run(policy, key, cost, peek=True)

    async def _run(self, policy: Policy, key: str, cost: int, *, peek: bool) -> Decision:
        now = "" if self._clock is None else repr(self._clock())
        allowed, ahead = await self._script(
            keys=[f"{self._prefix}{policy.name}:{key}"],
            args=[repr(policy.interval), repr(policy.capacity), cost, now, int(peek)],
        )
        return decide(policy, bool(int(allowed)), float(ahead))
