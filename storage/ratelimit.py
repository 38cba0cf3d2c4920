"""Rate limits shared by every instance: a sliding-window log per key, one Lua call."""

from __future__ import annotations

import time
import uuid

from redis.asyncio import Redis

from storage.hot import KEY_PREFIX

# KEYS: the window's sorted set. ARGV: now ms, window ms, limit, a unique member.
# Returns 0 when allowed (and recorded), else the ms until a slot frees up.
_HIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tonumber(oldest[2]) + ARGV[2] - ARGV[1]
"""

# Failed logins: KEYS: failure log. ARGV: now ms, window ms, free failures, max back-off ms.
# Returns the ms the caller must still wait (0 = may try): after `free` failures inside the
# window every further failure doubles the wait, counted from the latest failure.
_BACKOFF = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
local failures = redis.call('ZCARD', KEYS[1])
if failures < tonumber(ARGV[3]) then return 0 end
local latest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local wait = math.min(1000 * 2 ^ (failures - tonumber(ARGV[3])), tonumber(ARGV[4]))
local left = tonumber(latest[2]) + wait - tonumber(ARGV[1])
if left > 0 then return left end
return 0
"""


def _now_ms() -> int:
    return int(time.time() * 1000)


class RateLimiter:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._hit = redis.register_script(_HIT)
        self._backoff = redis.register_script(_BACKOFF)

    async def hit(self, name: str, subject: str, *, limit: int, window_seconds: float) -> float:
        """Count one request of `subject` against limit `name`; seconds to wait (0 = allowed)."""
        left_ms = await self._hit(
            keys=[f"{KEY_PREFIX}:rate:{name}:{subject}"],
            args=[_now_ms(), int(window_seconds * 1000), limit, uuid.uuid4().hex],
        )
        return int(left_ms) / 1000

    async def login_wait(
        self, subject: str, *, free_failures: int, window_seconds: float, max_backoff_seconds: float
    ) -> float:
        """Seconds `subject` (IP + login name) must wait before trying to log in again."""
        left_ms = await self._backoff(
            keys=[f"{KEY_PREFIX}:rate:login-failures:{subject}"],
            args=[_now_ms(), int(window_seconds * 1000), free_failures, int(max_backoff_seconds * 1000)],
        )
        return int(left_ms) / 1000

    async def login_failed(self, subject: str, *, window_seconds: float) -> None:
        key = f"{KEY_PREFIX}:rate:login-failures:{subject}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {uuid.uuid4().hex: _now_ms()})
            pipe.pexpire(key, int(window_seconds * 1000))
            await pipe.execute()

    async def login_succeeded(self, subject: str) -> None:
        await self.redis.delete(f"{KEY_PREFIX}:rate:login-failures:{subject}")
