"""Who is online. A user is online while at least one of their WebSocket connections, on
any instance, is unexpired. Each instance heartbeats its own connections; a crashed
instance stops heartbeating and its connections expire after the TTL, when any instance's
sweeper announces the user offline. The Lua scripts (storage.presence_scripts, which also
describes the keys: one Redis Cluster slot per script call) make each online/offline
transition happen (and be published) exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from storage import keys
from storage import presence_scripts as scripts
from storage.background import cancel_and_wait, run_every
from storage.slots import PARTITIONS, partition_of
from storage.users import StoredUser

log = logging.getLogger(__name__)


def now_ms() -> int:
    return int(time.time() * 1000)


def profile_of(user: StoredUser) -> bytes:
    """What presence events tell about their user (raw JSON, stored while they are online)."""
    last_seen = user.last_seen_at.isoformat() if user.last_seen_at else None
    return orjson.dumps({"username": user.username, "created_at": user.created_at.isoformat(),
                         "last_seen_at": last_seen})


def encode_change(user_id: str, online: bool, at_ms: int, profile: bytes | None) -> bytes:
    """A presence event as published, the profile (profile_of) included as is."""
    event: dict[str, object] = {"user_id": user_id, "online": online, "at_ms": at_ms}
    if profile is not None:
        event["profile"] = orjson.Fragment(profile)
    return orjson.dumps(event)


@dataclass(frozen=True, slots=True)
class PresenceChange:
    user_id: str
    online: bool
    at_ms: int
    user: StoredUser | None = None  # None: an event without profile (the user connected unprofiled)

    def encode(self) -> bytes:
        return encode_change(self.user_id, self.online, self.at_ms, profile_of(self.user) if self.user else None)

    @classmethod
    def decode(cls, raw: str | bytes) -> PresenceChange:
        data = orjson.loads(raw)
        user_id, online, at_ms = data["user_id"], data["online"], data["at_ms"]
        profile = data.get("profile")
        user = None
        if profile is not None:
            last_seen = profile["last_seen_at"]
            user = StoredUser(
                id=user_id, username=profile["username"], created_at=datetime.fromisoformat(profile["created_at"]),
                # Going offline is the moment lastSeenAt records (written in batches right after).
                last_seen_at=datetime.fromtimestamp(at_ms / 1000, UTC) if not online
                else datetime.fromisoformat(last_seen) if last_seen else None,
            )
        return cls(user_id=user_id, online=online, at_ms=at_ms, user=user)


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
        self._connect = redis.register_script(scripts.CONNECT)
        self._disconnect = redis.register_script(scripts.DISCONNECT)
        self._heartbeat = redis.register_script(scripts.HEARTBEAT)
        self._sweep = redis.register_script(scripts.SWEEP)
        self._local: dict[str, str] = {}  # connection id -> user id
        self._profiles: dict[str, bytes] = {}  # connection id -> profile_of(its user)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def local_connections(self) -> int:
        return len(self._local)

    async def online_among(self, user_ids: Sequence[str]) -> set[str]:
        """Which of `user_ids` are online now, in one round-trip (a ZMSCORE per partition)."""
        by_partition: dict[int, list[str]] = {}
        for user_id in dict.fromkeys(user_ids):
            by_partition.setdefault(partition_of(user_id), []).append(user_id)
        if not by_partition:
            return set()
        async with self.redis.pipeline(transaction=False) as pipe:
            for partition, ids in by_partition.items():
                pipe.zmscore(scripts.online_users(partition), ids)
            replies = await pipe.execute()
        now = now_ms()
        return {uid for ids, scores in zip(by_partition.values(), replies, strict=True)
                for uid, score in zip(ids, scores, strict=True) if score and score > now}

    async def online_page(self, *, after: str | None, count: int) -> list[str]:
        """Up to `count` ids of users online now, in id order, after id `after`. Each round reads
        up to `count` ids after the bound from every partition (one pipelined round-trip) and
        merges them; the merge is complete up to the lowest last id of the partitions that
        returned a full batch, so the next round starts there (more rounds only past entries
        expired but not swept yet)."""
        found: list[str] = []
        lower = f"({after}" if after is not None else "-"
        while len(found) < count:
            want = count - len(found)
            async with self.redis.pipeline(transaction=False) as pipe:
                for partition in range(PARTITIONS):
                    pipe.zrange(  # type: ignore[call-overload]  # BYLEX bounds are str; types-redis: int
                        scripts.online_user_ids(partition), lower, "+", bylex=True, offset=0, num=want
                    )
                batches: list[list[str]] = await pipe.execute()
            full = [batch[-1] for batch in batches if len(batch) == want]
            cut = min(full) if full else None
            candidates = sorted(uid for batch in batches for uid in batch if cut is None or uid <= cut)
            if not candidates:
                break
            online = await self.online_among(candidates)
            found += [uid for uid in candidates if uid in online][:want]
            if cut is None:
                break
            lower = f"({cut}"
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

    async def connect(self, user_id: str, user: StoredUser | None = None) -> str:
        """Register a connection of `user_id`; with `user`, its presence events carry the
        profile (subscribers then look nothing up)."""
        connection_id = uuid.uuid4().hex
        self._local[connection_id] = user_id
        if user is not None:
            self._profiles[connection_id] = profile_of(user)
        try:
            await self._register(user_id, connection_id)
        except BaseException:
            self._local.pop(connection_id, None)  # never heartbeat what was not registered
            self._profiles.pop(connection_id, None)
            raise
        return connection_id

    async def _register(self, user_id: str, connection_id: str) -> None:
        """Also re-registers a connection swept while open: its event carries the profile still."""
        now = now_ms()
        profile = self._profiles.get(connection_id)
        await self._connect(
            keys=scripts.user_keys(user_id),
            args=[connection_id, now + self.ttl_ms, now, user_id, encode_change(user_id, True, now, profile),
                  profile or b"", keys.PRESENCE_CHANNEL],
        )

    async def disconnect(self, user_id: str, connection_id: str) -> None:
        self._local.pop(connection_id, None)
        self._profiles.pop(connection_id, None)
        now = now_ms()
        went_offline = await self._disconnect(
            keys=scripts.user_keys(user_id), args=[connection_id, now, user_id, keys.PRESENCE_CHANNEL],
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
            keys=scripts.user_keys(user_id), args=[connection_id, now_ms() + self.ttl_ms, user_id],
            client=pipe,
        )

    async def sweep(self) -> list[str]:
        """Announce offline the users whose connections all expired (crashed instances): one
        script call per partition, pipelined."""
        now = now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            for partition in range(PARTITIONS):
                await self._sweep(
                    keys=[scripts.online_users(partition), scripts.online_user_ids(partition)],
                    args=[now, scripts.connections_prefix(partition), scripts.profile_prefix(partition),
                          keys.PRESENCE_CHANNEL],
                    client=pipe,
                )
            swept: list[list[str]] = await pipe.execute()
        gone = [user_id for batch in swept for user_id in batch]
        if self.on_offline is not None:
            for user_id in gone:  # the offline events were published by the scripts
                self.on_offline(user_id, now)
        return gone
