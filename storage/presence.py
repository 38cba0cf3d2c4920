"""Who is online. A user is online while at least one of their WebSocket connections, on
any instance, is unexpired. Each instance heartbeats its own connections; a crashed
instance stops heartbeating and its connections expire after the TTL, when any instance's
sweeper announces the user offline. The Lua scripts make each online/offline transition
happen (and be published) exactly once.

Redis layout: `presence:conns:<user>` sorted set conn id -> expiry ms;
`presence:online` sorted set user id -> latest expiry ms; `presence:online-ids` the same
members at score 0, for paging by id. (The scripts touch per-user keys
they compute, which is fine on a single Redis, not on a cluster.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from storage import keys
from storage.background import cancel_and_wait, run_every

log = logging.getLogger(__name__)

_CONNECT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local before = redis.call('ZCARD', KEYS[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], 'GT', ARGV[2], ARGV[4])
redis.call('ZADD', KEYS[4], 0, ARGV[4])
if before == 0 then
  redis.call('PUBLISH', KEYS[3], ARGV[5])
  return 1
end
return 0
"""

_DISCONNECT = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) == 0 and redis.call('ZREM', KEYS[2], ARGV[3]) == 1 then
  redis.call('ZREM', KEYS[4], ARGV[3])
  redis.call('PUBLISH', KEYS[3], ARGV[4])
  return 1
end
return 0
"""

# Refreshes a connection only while it is still registered: a beat queued before a disconnect
# that reaches Redis after it finds no member and adds nothing back.
_HEARTBEAT = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[2], 'GT')
redis.call('ZADD', KEYS[2], 'GT', ARGV[2], ARGV[3])
return 1
"""

_SWEEP = """
local users = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 200)
local gone = {}
for _, uid in ipairs(users) do
  local conns = ARGV[2] .. uid
  redis.call('ZREMRANGEBYSCORE', conns, '-inf', ARGV[1])
  local newest = redis.call('ZRANGE', conns, -1, -1, 'WITHSCORES')
  if newest[2] then
    redis.call('ZADD', KEYS[1], newest[2], uid)
  else
    redis.call('ZREM', KEYS[1], uid)
    redis.call('ZREM', KEYS[3], uid)
    redis.call('PUBLISH', KEYS[2], cjson.encode({user_id = uid, online = false, at_ms = tonumber(ARGV[1])}))
    table.insert(gone, uid)
  end
end
return gone
"""


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class PresenceChange:
    user_id: str
    online: bool
    at_ms: int

    def encode(self) -> bytes:
        return orjson.dumps({"user_id": self.user_id, "online": self.online, "at_ms": self.at_ms})

    @classmethod
    def decode(cls, raw: str | bytes) -> PresenceChange:
        data = orjson.loads(raw)
        return cls(user_id=data["user_id"], online=data["online"], at_ms=data["at_ms"])


OfflineHook = Callable[[str, int], None]
"""Told (user id, ms) when a user's last connection closed; must not block (it only queues)."""


class PresenceTracker:
    """This instance's open connections: registers, heartbeats and sweeps them."""

    def __init__(
        self,
        redis: Redis,
        *,
        ttl_seconds: float = 30.0,
        heartbeat_seconds: float = 10.0,
        on_offline: OfflineHook | None = None,
    ) -> None:
        self.redis = redis
        self.ttl_ms = int(ttl_seconds * 1000)
        self.heartbeat_seconds = heartbeat_seconds
        self.on_offline = on_offline
        self._connect = redis.register_script(_CONNECT)
        self._disconnect = redis.register_script(_DISCONNECT)
        self._heartbeat = redis.register_script(_HEARTBEAT)
        self._sweep = redis.register_script(_SWEEP)
        self._local: dict[str, str] = {}  # connection id -> user id
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def local_connections(self) -> int:
        return len(self._local)

    async def online_among(self, user_ids: Sequence[str]) -> set[str]:
        """Which of `user_ids` are online now, in one round-trip."""
        if not user_ids:
            return set()
        scores = await self.redis.zmscore(keys.online_users(), list(user_ids))
        now = now_ms()
        return {uid for uid, score in zip(user_ids, scores, strict=True) if score and score > now}

    async def online_page(self, *, after: str | None, count: int) -> list[str]:
        """Up to `count` ids of users online now, in id order, after id `after`: reads about
        `count` ids per round (more only past entries expired but not swept yet)."""
        found: list[str] = []
        lower = f"({after}" if after is not None else "-"
        while len(found) < count:
            ids = await self.redis.zrange(  # type: ignore[call-overload]  # BYLEX bounds are str; types-redis: int
                keys.online_user_ids(), lower, "+", bylex=True, offset=0, num=count - len(found)
            )
            if not ids:
                break
            now = now_ms()
            scores = await self.redis.zmscore(keys.online_users(), ids)
            found += [uid for uid, score in zip(ids, scores, strict=True) if score is not None and score >= now]
            lower = f"({ids[-1]}"
        return found

    def start(self) -> None:
        # Separate loops: a slow sweep (MongoDB down) must never delay the heartbeats.
        self._tasks = [
            asyncio.create_task(run_every(self.heartbeat_seconds, self.heartbeat, what="presence heartbeat"),
                                name="presence-heartbeat"),
            asyncio.create_task(run_every(self.heartbeat_seconds, self.sweep, what="presence sweep"),
                                name="presence-sweep"),
        ]

    async def stop(self, timeout: float = 5.0) -> None:
        """Close this instance's connections in Redis (a graceful shutdown is not a crash).
        Bounded: with Redis gone, the entries expire by themselves and other instances'
        sweeps announce the users offline."""
        await cancel_and_wait(self._tasks)
        try:
            async with asyncio.timeout(timeout):
                for connection_id, user_id in list(self._local.items()):
                    with contextlib.suppress(Exception):
                        await self.disconnect(user_id, connection_id)
        except TimeoutError:
            log.warning("presence entries left to expire at shutdown", extra={"connections": len(self._local)})

    async def connect(self, user_id: str) -> str:
        connection_id = uuid.uuid4().hex
        self._local[connection_id] = user_id
        try:
            await self._register(user_id, connection_id)
        except BaseException:
            self._local.pop(connection_id, None)  # never heartbeat what was not registered
            raise
        return connection_id

    async def _register(self, user_id: str, connection_id: str, client: Redis | Pipeline | None = None) -> None:
        now = now_ms()
        await self._connect(
            keys=[keys.user_connections(user_id), keys.online_users(), keys.PRESENCE_CHANNEL,
                  keys.online_user_ids()],
            args=[connection_id, now + self.ttl_ms, now, user_id,
                  PresenceChange(user_id, True, now).encode()],
            client=client,
        )

    async def disconnect(self, user_id: str, connection_id: str) -> None:
        self._local.pop(connection_id, None)
        now = now_ms()
        went_offline = await self._disconnect(
            keys=[keys.user_connections(user_id), keys.online_users(), keys.PRESENCE_CHANNEL,
                  keys.online_user_ids()],
            args=[connection_id, now, user_id, PresenceChange(user_id, False, now).encode()],
        )
        if went_offline and self.on_offline is not None:
            self.on_offline(user_id, now)

    async def heartbeat(self, chunk: int = 500) -> None:
        """Refresh every local connection, pipelined: one round-trip per `chunk` connections
        instead of one each (an instance holds thousands of sockets)."""
        connections = list(self._local.items())
        for start in range(0, len(connections), chunk):
            batch = connections[start:start + chunk]
            async with self.redis.pipeline(transaction=False) as pipe:
                for connection_id, user_id in batch:
                    await self._beat(user_id, connection_id, pipe)
                refreshed = await pipe.execute()
            for (connection_id, user_id), found in zip(batch, refreshed, strict=True):
                # Swept while still open here (this instance stalled past the TTL): register it
                # again. Not after a disconnect, which forgets the connection before its script.
                if not found and connection_id in self._local:
                    await self._register(user_id, connection_id)

    async def _beat(self, user_id: str, connection_id: str, pipe: Pipeline) -> None:
        await self._heartbeat(
            keys=[keys.user_connections(user_id), keys.online_users()],
            args=[connection_id, now_ms() + self.ttl_ms, user_id],
            client=pipe,
        )

    async def sweep(self) -> list[str]:
        """Announce offline the users whose connections all expired (crashed instances)."""
        now = now_ms()
        gone: list[str] = await self._sweep(
            keys=[keys.online_users(), keys.PRESENCE_CHANNEL, keys.online_user_ids()],
            args=[now, keys.user_connections("")],
        )
        if self.on_offline is not None:
            for user_id in gone:  # the offline events were published by the script
                self.on_offline(user_id, now)
        return gone
