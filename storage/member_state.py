"""Each member's state in a conversation: read markers, unread counts, typing notices, and the
conversation events they publish to the other members.

Every script here touches the keys of one conversation only (one hash slot) and checks
membership itself, so a member removed a moment ago can neither read nor announce anything.
An unread count is never stored: it is the conversation's messages after the member's marker
minus the member's own, two ZLEXCOUNTs (O(log n)) over sets the send script keeps.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis

from storage import keys
from storage.slots import partition_of

log = logging.getLogger(__name__)

TYPING_TTL_MS = 5_000
TYPING_THROTTLE_MS = 2_000
NOT_A_MEMBER = -1

_CHANNEL_PREFIX = keys.conversation_events("")

# KEYS: members, read markers, read times, the partition's outbox. ARGV: member, up_to, now ms, READ event,
# channel prefix, conversation. Returns -1 (not a member), 0 (not forward: nothing changes), 1.
_MARK_READ = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -1 end
local current = redis.call('HGET', KEYS[2], ARGV[1])
if current and current >= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
redis.call('XADD', KEYS[4], '*', 'kind', 'read', 'conversation', ARGV[6], 'user', ARGV[1], 'up_to', ARGV[2],
           'at', ARGV[3])
for _, member in ipairs(redis.call('HKEYS', KEYS[1])) do
  if member ~= ARGV[1] then redis.call('PUBLISH', ARGV[5] .. member, ARGV[4]) end
end
return 1
"""

# KEYS: read markers, read times, conversation messages, the member's own messages.
# ARGV: member. Returns {unread, marker or nil, every member's read time as a flat list}.
_STATE = """
local marker = redis.call('HGET', KEYS[1], ARGV[1])
local from = marker and ('(' .. marker) or '-'
local unread = redis.call('ZLEXCOUNT', KEYS[3], from, '+') - redis.call('ZLEXCOUNT', KEYS[4], from, '+')
return {unread, marker, redis.call('HGETALL', KEYS[2])}
"""

# KEYS: members, active, announced, throttle. ARGV: member, ttl ms, throttle ms, event, channel prefix.
_TYPING_START = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -1 end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
if redis.call('SET', KEYS[4], '1', 'PX', ARGV[3], 'NX') then
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[2] * 3)
  for _, member in ipairs(redis.call('HKEYS', KEYS[1])) do
    if member ~= ARGV[1] then redis.call('PUBLISH', ARGV[5] .. member, ARGV[4]) end
  end
  return 1
end
return 0
"""

# KEYS: members, active, announced. ARGV: member, STOPPED event, channel prefix, '1' = only if expired.
# Returns the ms left while still active (expiry check), else 1 if a stop went out, 0 if not.
# A member removed meanwhile still gets the stop out to the others: their indicator must end.
_TYPING_STOP = """
if ARGV[4] == '1' then
  local left = redis.call('PTTL', KEYS[2])
  if left > 0 then return left + 1 end
end
redis.call('DEL', KEYS[2])
if redis.call('DEL', KEYS[3]) == 1 then
  for _, member in ipairs(redis.call('HKEYS', KEYS[1])) do
    if member ~= ARGV[1] then redis.call('PUBLISH', ARGV[3] .. member, ARGV[2]) end
  end
  return 1
end
return 0
"""


@dataclass(frozen=True, slots=True)
class MemberState:
    unread: int
    read_up_to: str | None
    read_times_ms: dict[str, int]  # every member's last markRead, by member id


@dataclass(frozen=True, slots=True)
class ConversationEvent:
    type: str  # READ, TYPING_STARTED, TYPING_STOPPED, MEMBER_ADDED, MEMBER_REMOVED, RENAMED
    conversation_id: str
    user_id: str  # who read or types; who was added or removed; who renamed
    at_ms: int
    direct: bool  # a DIRECT conversation (its events also name the partner)
    up_to: str | None = None  # READ only
    by_user_id: str | None = None  # MEMBER_ADDED / MEMBER_REMOVED: who did it

    def encode(self) -> bytes:
        return orjson.dumps({"type": self.type, "conversation_id": self.conversation_id, "user_id": self.user_id,
                             "at_ms": self.at_ms, "direct": self.direct, "up_to": self.up_to,
                             "by_user_id": self.by_user_id})

    @classmethod
    def decode(cls, raw: str | bytes) -> ConversationEvent:
        data = orjson.loads(raw)
        return cls(type=data["type"], conversation_id=data["conversation_id"], user_id=data["user_id"],
                   at_ms=data["at_ms"], direct=data["direct"], up_to=data.get("up_to"),
                   by_user_id=data.get("by_user_id"))


class MemberStateStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._mark_read = redis.register_script(_MARK_READ)
        self._state = redis.register_script(_STATE)
        self._typing_start = redis.register_script(_TYPING_START)
        self._typing_stop = redis.register_script(_TYPING_STOP)
        self._typing_timers: dict[tuple[str, str], asyncio.TimerHandle] = {}

    async def states(self, user_id: str, conversation_ids: Sequence[str]) -> list[MemberState]:
        """The member's unread count and marker, and every member's read time, per conversation
        (one round-trip)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for conversation_id in conversation_ids:
                await self._state(
                    keys=[keys.read_markers(conversation_id), keys.read_times(conversation_id),
                          keys.conversation_messages(conversation_id),
                          keys.conversation_sent(conversation_id, user_id)],
                    args=[user_id], client=pipe,
                )
            replies = await pipe.execute()
        states = []
        for unread, marker, flat_times in replies:
            times = {flat_times[i]: int(flat_times[i + 1]) for i in range(0, len(flat_times), 2)}
            states.append(MemberState(unread=max(int(unread), 0), read_up_to=marker, read_times_ms=times))
        return states

    async def mark_read(self, conversation_id: str, user_id: str, up_to: str, *, direct: bool, now_ms: int) -> int:
        """Move the member's marker to `up_to` if that is forward and tell the other members:
        1; 0 when it is not forward (nothing changes); NOT_A_MEMBER."""
        event = ConversationEvent("READ", conversation_id, user_id, now_ms, direct, up_to=up_to)
        return int(await self._mark_read(
            keys=[keys.conversation_members(conversation_id), keys.read_markers(conversation_id),
                  keys.read_times(conversation_id), keys.outbox_stream(partition_of(conversation_id))],
            args=[user_id, up_to, now_ms, event.encode(), _CHANNEL_PREFIX, conversation_id],
        ))

    async def set_typing(self, conversation_id: str, user_id: str, typing: bool, *, direct: bool, now_ms: int) -> bool:
        """Start (throttled: one start event per 2 s) or stop; a start not refreshed within
        5 s stops by itself (checked by a timer on the instance that saw the last refresh).
        False when the user is not a member."""
        def key(part: str) -> str:
            return keys.typing(conversation_id, user_id, part)

        members = keys.conversation_members(conversation_id)
        if not typing:
            self._cancel_timer(conversation_id, user_id)
            stopped = ConversationEvent("TYPING_STOPPED", conversation_id, user_id, now_ms, direct).encode()
            await self._typing_stop(keys=[members, key("active"), key("announced")],
                                    args=[user_id, stopped, _CHANNEL_PREFIX, "0"])
            return True
        started = ConversationEvent("TYPING_STARTED", conversation_id, user_id, now_ms, direct).encode()
        outcome = await self._typing_start(keys=[members, key("active"), key("announced"), key("throttle")],
                                           args=[user_id, TYPING_TTL_MS, TYPING_THROTTLE_MS, started, _CHANNEL_PREFIX])
        if outcome == NOT_A_MEMBER:
            return False
        self._schedule_expiry(conversation_id, user_id, direct, TYPING_TTL_MS)
        return True

    def _cancel_timer(self, conversation_id: str, user_id: str) -> None:
        timer = self._typing_timers.pop((conversation_id, user_id), None)
        if timer is not None:
            timer.cancel()

    def _schedule_expiry(self, conversation_id: str, user_id: str, direct: bool, delay_ms: int) -> None:
        self._cancel_timer(conversation_id, user_id)
        loop = asyncio.get_running_loop()
        self._typing_timers[(conversation_id, user_id)] = loop.call_later(
            delay_ms / 1000, lambda: asyncio.ensure_future(self._expire(conversation_id, user_id, direct))
        )

    async def _expire(self, conversation_id: str, user_id: str, direct: bool) -> None:
        self._typing_timers.pop((conversation_id, user_id), None)
        stopped = ConversationEvent("TYPING_STOPPED", conversation_id, user_id, _now_ms(), direct).encode()
        try:
            left = await self._typing_stop(
                keys=[keys.conversation_members(conversation_id), keys.typing(conversation_id, user_id, "active"),
                      keys.typing(conversation_id, user_id, "announced")],
                args=[user_id, stopped, _CHANNEL_PREFIX, "1"],
            )
        except Exception as exc:  # noqa: BLE001 - the announced key expires by itself
            log.warning("typing expiry check failed", extra={"error": repr(exc)})
            return
        if left > 1:  # refreshed meanwhile (perhaps through another instance)
            self._schedule_expiry(conversation_id, user_id, direct, int(left))

    async def publish(self, events: Sequence[ConversationEvent], user_ids: Sequence[str]) -> None:
        """Send conversation events to these users (membership changes, after the change), in
        one round-trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for event in events:
                encoded = event.encode()
                for user_id in dict.fromkeys(user_ids):
                    pipe.publish(keys.conversation_events(user_id), encoded)
            await pipe.execute()

    def close(self) -> None:
        for timer in self._typing_timers.values():
            timer.cancel()
        self._typing_timers.clear()


def _now_ms() -> int:
    return int(time.time() * 1000)
