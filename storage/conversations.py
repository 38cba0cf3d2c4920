"""Conversation lists, unread counts, read markers and typing notices, in Redis.

Read markers reach MongoDB through the outbox (`storage.read_markers`); a user whose Redis
state is missing has it rebuilt from MongoDB first (`storage.conversation_rebuild`). The send
script (`storage.messages`) keeps each user's list ordered by latest activity and counts unread
messages; `mark_read` moves a marker forward only and recounts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis

from storage import keys
from storage.conversation_rebuild import ConversationRebuilder

log = logging.getLogger(__name__)

TYPING_TTL_MS = 5_000
TYPING_THROTTLE_MS = 2_000

# KEYS: viewer's read markers, read times, unread counts; the ids the partner sent in the
#       conversation; partner's conversation-events channel; outbox.
# ARGV: partner, up_to, now ms, READ event, viewer.
# ZLEXCOUNT over the partner's own id set: O(log n), no document loaded.
_MARK_READ = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and current >= ARGV[2] then return {0, current} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[1], redis.call('ZLEXCOUNT', KEYS[4], '(' .. ARGV[2], '+'))
redis.call('XADD', KEYS[6], '*', 'kind', 'read', 'user', ARGV[5], 'partner', ARGV[1], 'up_to', ARGV[2], 'at', ARGV[3])
if ARGV[5] ~= ARGV[1] then redis.call('PUBLISH', KEYS[5], ARGV[4]) end
return {1, ARGV[2]}
"""

# KEYS: active, announced, throttle, partner's channel. ARGV: ttl ms, throttle ms, event.
_TYPING_START = """
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('SET', KEYS[3], '1', 'PX', ARGV[2], 'NX') then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[1] * 3)
  redis.call('PUBLISH', KEYS[4], ARGV[3])
  return 1
end
return 0
"""

# KEYS: active, announced, partner's channel. ARGV: STOPPED event, '1' = only if expired.
# Returns the ms left while still active (expiry check), else 1 if a stop went out, 0 if not.
_TYPING_STOP = """
if ARGV[2] == '1' then
  local left = redis.call('PTTL', KEYS[1])
  if left > 0 then return left + 1 end
end
redis.call('DEL', KEYS[1])
if redis.call('DEL', KEYS[2]) == 1 then
  redis.call('PUBLISH', KEYS[3], ARGV[1])
  return 1
end
return 0
"""


@dataclass(frozen=True, slots=True)
class ConversationState:
    partner_id: str
    last_activity_ms: int
    unread: int
    read_up_to: str | None
    read_at_ms: int | None
    partner_read_at_ms: int | None


@dataclass(frozen=True, slots=True)
class ConversationEvent:
    type: str  # READ, TYPING_STARTED, TYPING_STOPPED
    partner_id: str  # who read or types (the viewer's partner)
    at_ms: int
    up_to: str | None = None

    def encode(self) -> bytes:
        return orjson.dumps({"type": self.type, "partner_id": self.partner_id, "at_ms": self.at_ms,
                             "up_to": self.up_to})

    @classmethod
    def decode(cls, raw: str | bytes) -> ConversationEvent:
        data = orjson.loads(raw)
        return cls(type=data["type"], partner_id=data["partner_id"], at_ms=data["at_ms"], up_to=data.get("up_to"))


class ConversationStore:
    def __init__(self, redis: Redis, rebuilder: ConversationRebuilder) -> None:
        self.redis = redis
        self.rebuilder = rebuilder
        self._mark_read = redis.register_script(_MARK_READ)
        self._typing_start = redis.register_script(_TYPING_START)
        self._typing_stop = redis.register_script(_TYPING_STOP)
        self._typing_timers: dict[tuple[str, str], asyncio.TimerHandle] = {}

    async def page(
        self, user_id: str, *, first: int, after: tuple[int, str] | None
    ) -> tuple[list[ConversationState], bool]:
        """Most recent activity first; `after` is the (ms, partner) of the previous page's end."""
        await self.ensure_built(user_id)
        key = keys.conversations(user_id)
        top = f"{after[0]}" if after else "+inf"
        entries: list[tuple[str, float]] = []
        offset = 0
        while len(entries) < first + 1:
            batch = await self.redis.zrange(  # type: ignore[call-overload]  # BYSCORE bounds are str; types-redis: int
                key, top, "-inf", desc=True, byscore=True, withscores=True, offset=offset, num=first + 1 + 20
            )
            if not batch:
                break
            offset += len(batch)
            for partner, score in batch:
                # Same ms as the cursor: only members after it in (score desc, member desc) order.
                if after and int(score) == after[0] and partner >= after[1]:
                    continue
                entries.append((partner, score))
        has_more = len(entries) > first
        entries = entries[:first]
        partners = [p for p, _ in entries]
        if not partners:
            return [], False
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(keys.unread_counts(user_id), partners)
            pipe.hmget(keys.read_markers(user_id), partners)
            pipe.hmget(keys.read_times(user_id), partners)
            for partner in partners:
                pipe.hget(keys.read_times(partner), user_id)
            unread, markers, times, *partner_times = await pipe.execute()
        states = [
            ConversationState(
                partner_id=partner, last_activity_ms=int(score), unread=int(unread[i] or 0),
                read_up_to=markers[i], read_at_ms=int(times[i]) if times[i] else None,
                partner_read_at_ms=int(partner_times[i]) if partner_times[i] else None,
            )
            for i, (partner, score) in enumerate(entries)
        ]
        return states, has_more

    async def state(self, user_id: str, partner_id: str) -> ConversationState:
        await self.ensure_built(user_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zscore(keys.conversations(user_id), partner_id)
            pipe.hget(keys.unread_counts(user_id), partner_id)
            pipe.hget(keys.read_markers(user_id), partner_id)
            pipe.hget(keys.read_times(user_id), partner_id)
            pipe.hget(keys.read_times(partner_id), user_id)
            score, unread, marker, read_at, partner_read_at = await pipe.execute()
        return ConversationState(
            partner_id=partner_id, last_activity_ms=int(score or 0), unread=int(unread or 0), read_up_to=marker,
            read_at_ms=int(read_at) if read_at else None,
            partner_read_at_ms=int(partner_read_at) if partner_read_at else None,
        )

    async def mark_read(self, user_id: str, partner_id: str, up_to: str, now_ms: int) -> bool:
        """Move the marker to `up_to` if that is forward; False (nothing changes) otherwise."""
        await self.ensure_built(user_id)
        moved, _ = await self._mark_read(
            keys=[keys.read_markers(user_id), keys.read_times(user_id), keys.unread_counts(user_id),
                  keys.conversation_sent(keys.conversation_id(user_id, partner_id), partner_id),
                  keys.conversation_events(partner_id), keys.OUTBOX_STREAM],
            args=[partner_id, up_to, now_ms, ConversationEvent("READ", user_id, now_ms, up_to).encode(), user_id],
        )
        return bool(moved)

    async def set_typing(self, user_id: str, partner_id: str, typing: bool, now_ms: int) -> None:
        """Start (throttled: one start event per 2 s) or stop; a start not refreshed within
        5 s stops by itself (checked by a timer on the instance that saw the last refresh)."""
        active, announced = keys.typing(user_id, partner_id, "active"), keys.typing(user_id, partner_id, "announced")
        channel = keys.conversation_events(partner_id)
        stopped = ConversationEvent("TYPING_STOPPED", user_id, now_ms).encode()
        if not typing:
            self._cancel_timer(user_id, partner_id)
            await self._typing_stop(keys=[active, announced, channel], args=[stopped, "0"])
            return
        started = ConversationEvent("TYPING_STARTED", user_id, now_ms).encode()
        await self._typing_start(keys=[active, announced, keys.typing(user_id, partner_id, "throttle"), channel],
                                 args=[TYPING_TTL_MS, TYPING_THROTTLE_MS, started])
        self._schedule_expiry(user_id, partner_id, TYPING_TTL_MS)

    def _cancel_timer(self, user_id: str, partner_id: str) -> None:
        timer = self._typing_timers.pop((user_id, partner_id), None)
        if timer is not None:
            timer.cancel()

    def _schedule_expiry(self, user_id: str, partner_id: str, delay_ms: int) -> None:
        self._cancel_timer(user_id, partner_id)
        loop = asyncio.get_running_loop()
        self._typing_timers[(user_id, partner_id)] = loop.call_later(
            delay_ms / 1000, lambda: asyncio.ensure_future(self._expire(user_id, partner_id))
        )

    async def _expire(self, user_id: str, partner_id: str) -> None:
        self._typing_timers.pop((user_id, partner_id), None)
        at_ms = _now_ms()
        try:
            left = await self._typing_stop(
                keys=[keys.typing(user_id, partner_id, "active"), keys.typing(user_id, partner_id, "announced"),
                      keys.conversation_events(partner_id)],
                args=[ConversationEvent("TYPING_STOPPED", user_id, at_ms).encode(), "1"],
            )
        except Exception as exc:  # noqa: BLE001 - the announced key expires by itself
            log.warning("typing expiry check failed", extra={"error": repr(exc)})
            return
        if left > 1:  # refreshed meanwhile (perhaps through another instance)
            self._schedule_expiry(user_id, partner_id, int(left))

    def close(self) -> None:
        for timer in self._typing_timers.values():
            timer.cancel()
        self._typing_timers.clear()

    async def ensure_built(self, user_id: str) -> None:
        """Rebuild the user's list, unread counts and read markers from MongoDB if Redis
        does not have them (a new Redis, or one that lost its data)."""
        if await self.redis.exists(keys.conversations_built(user_id)):
            return
        await self.rebuilder.rebuild(user_id)
        await self.redis.set(keys.conversations_built(user_id), "1")


def _now_ms() -> int:
    return int(time.time() * 1000)
