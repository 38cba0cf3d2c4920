"""Who blocked whom: MongoDB holds the record, Redis a copy per user, each process a cache.

- MongoDB `blocks`: one document per (blocker, blocked), `_id` "<blocker>:<blocked>", so
  blocking twice stays one document.
- Redis, per user (keys.blocking / keys.blocking_changes, one `{u:<id>}` slot): the set of ids
  the user blocked plus the member "_" once built from MongoDB, and a change counter. A change
  bumps the counter and drops the set (MongoDB first); a rebuild stores what it read from
  MongoDB only if the counter did not move meanwhile, so an older read never wins.
- Each process remembers the sets it read (every DIRECT send asks about both ends) and forgets
  a user's when any instance announces a change on one pub/sub channel; when the notices were
  interrupted the cache is cleared. An entry lives `cache_seconds` after the newest echo of
  that channel (storage.pubsub) that came back behind every earlier notice, so a connection
  that dies silently leaves it trusted for at most `cache_seconds`.

Only outgoing sets are kept: "is there a block between A and B" reads A's and B's, each bounded
by the cap on how many one may block (a spammer blocked by thousands costs nothing).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from storage import keys
from storage.background import cancel_and_wait
from storage.pubsub import (
    PubSubConnectionLost,
    PubSubHub,
    Subscription,
    SubscriptionInterrupted,
    current_until,
    echo_interval,
)
from storage.scripts import run_pipelined

log = logging.getLogger(__name__)

CACHE_SIZE = 50_000  # users whose blocked set a process remembers
COPY_TTL_SECONDS = 7 * 86400  # an idle user's Redis copy goes; MongoDB rebuilds it
BUILT = "_"  # member marking a Redis copy as complete (a user who blocked nobody has only it)
RESUBSCRIBE_SECONDS = 1.0

# KEYS: the blocked set, its change counter. ARGV: TTL seconds. A block or unblock landed in MongoDB.
_CHANGED = """
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
return 1
"""

# KEYS: the blocked set, its change counter. ARGV: the counter read before MongoDB ('' = none),
# TTL seconds, the blocked ids read. Stores them only if nothing changed since.
_BUILD = """
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SADD', KEYS[1], '""" + BUILT + """', unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


class BlockLimitReached(Exception):
    """The user already blocks as many users as allowed."""


@dataclass(frozen=True, slots=True)
class StoredBlock:
    blocker_id: str
    blocked_id: str
    created_at: datetime


def block_id(blocker_id: str, blocked_id: str) -> str:
    return f"{blocker_id}:{blocked_id}"


class BlockStore:
    def __init__(self, redis: Redis, collection: AsyncCollection[dict[str, Any]], hub: PubSubHub, *,
                 max_blocks: int, cache_seconds: float) -> None:
        self.redis = redis
        self.collection = collection
        self.hub = hub
        self.max_blocks = max_blocks
        self.cache_seconds = cache_seconds
        self._changed = redis.register_script(_CHANGED)
        self._build = redis.register_script(_BUILD)
        self._cache: dict[str, tuple[frozenset[str], float]] = {}  # user -> (blocked ids, monotonic read time)
        self._forgets = 0  # bumped whenever the cache forgets: a read begun before stores nothing
        self._reading: dict[str, asyncio.Future[dict[str, frozenset[str]]]] = {}  # user -> read in flight
        self._listener: asyncio.Task[None] | None = None
        self._notices: Subscription | None = None  # while listening: vouches for the cache

    async def create_indexes(self) -> None:
        await self.collection.create_index([("blocker_id", 1), ("created_at", -1)], name="blocker_newest")

    def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="block-notices")

    async def stop(self) -> None:
        if self._listener is not None:
            await cancel_and_wait([self._listener])

    async def block(self, blocker_id: str, blocked_id: str, at: datetime) -> bool:
        """Record the block; False if it was there already. BlockLimitReached past the cap."""
        new = await self.collection.find_one({"_id": block_id(blocker_id, blocked_id)}, projection={"_id": 1}) is None
        if new:
            if await self.collection.count_documents({"blocker_id": blocker_id}) >= self.max_blocks:
                raise BlockLimitReached(blocker_id)
            await self.collection.update_one(
                {"_id": block_id(blocker_id, blocked_id)},
                {"$setOnInsert": {"blocker_id": blocker_id, "blocked_id": blocked_id, "created_at": at}},
                upsert=True,
            )
        await self._announce(blocker_id)  # also after a retry: repairs a copy a crash left stale
        return new

    async def unblock(self, blocker_id: str, blocked_id: str) -> bool:
        """Remove the block; False if there was none."""
        result = await self.collection.delete_one({"_id": block_id(blocker_id, blocked_id)})
        await self._announce(blocker_id)
        return result.deleted_count > 0

    async def new_user(self, user_id: str) -> None:
        """A user just created blocks nobody: the Redis copy says so now, so their first sends
        never ask MongoDB (nor wait for it during an outage)."""
        await self._build(keys=[keys.blocking(user_id), keys.blocking_changes(user_id)], args=["", COPY_TTL_SECONDS])

    async def blocks_of(self, blocker_id: str) -> list[StoredBlock]:
        """Whom the user blocks, newest first (from MongoDB: a settings page, not a hot path)."""
        cursor = self.collection.find({"blocker_id": blocker_id}).sort([("created_at", -1), ("_id", 1)])
        return [StoredBlock(raw["blocker_id"], raw["blocked_id"], raw["created_at"])
                async for raw in cursor.limit(self.max_blocks)]

    async def hidden_from(self, viewer_id: str, user_ids: Iterable[str]) -> set[str]:
        """Those of `user_ids` in a block with the viewer (either way): their presence is not shown."""
        others = [u for u in dict.fromkeys(user_ids) if u != viewer_id]
        if not others:
            return set()
        sets = await self.blocking_of_many([viewer_id, *others])
        mine = sets[viewer_id]
        return {u for u in others if u in mine or viewer_id in sets[u]}

    async def blocking_of_many(self, user_ids: Sequence[str]) -> dict[str, frozenset[str]]:
        """Each user's blocked ids: from this process's cache, else one pipelined Redis read
        (MongoDB rebuilds any copy Redis lacks)."""
        now = time.monotonic()
        found: dict[str, frozenset[str]] = {}
        missing: list[str] = []
        for user_id in dict.fromkeys(user_ids):
            cached = self._cache.get(user_id)
            if cached is not None and now - current_until(self._notices, cached[1]) < self.cache_seconds:
                found[user_id] = cached[0]
            else:
                missing.append(user_id)
        if missing:
            found.update(await self._shared_read(missing))
        return found

    async def _shared_read(self, user_ids: list[str]) -> dict[str, frozenset[str]]:
        """One read per user at a time: N presence subscribers missing the same user share it."""
        new = [u for u in user_ids if u not in self._reading]
        if new:
            read = asyncio.ensure_future(self._read_and_remember(new))
            for user_id in new:
                self._reading[user_id] = read
            read.add_done_callback(lambda done: [self._reading.pop(u) for u in new if self._reading.get(u) is done])
        found: dict[str, frozenset[str]] = {}
        for waited in {id(f): f for f in (self._reading[u] for u in user_ids)}.values():
            found.update(await asyncio.shield(waited))  # one waiter's cancel must not fail the others
        return {u: found[u] for u in user_ids}

    async def _read_and_remember(self, user_ids: list[str]) -> dict[str, frozenset[str]]:
        forgets, now = self._forgets, time.monotonic()
        read, unknown = await self._read(user_ids)
        if self._forgets == forgets:  # nothing was forgotten meanwhile: what was read is current
            for user_id, blocked in read.items():
                if user_id not in unknown:
                    self._remember(user_id, blocked, now)
        return read

    async def _read(self, user_ids: list[str]) -> tuple[dict[str, frozenset[str]], set[str]]:
        """The users' blocked sets, and those only guessed (empty) because MongoDB was down."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.smembers(keys.blocking(user_id))
                pipe.get(keys.blocking_changes(user_id))
            replies = await pipe.execute()
        found: dict[str, frozenset[str]] = {}
        lacking: dict[str, str | None] = {}  # user -> change counter read before MongoDB
        for index, user_id in enumerate(user_ids):
            members, counter = replies[2 * index], replies[2 * index + 1]
            if BUILT in members:
                found[user_id] = frozenset(members) - {BUILT}
            else:
                lacking[user_id] = counter
        if not lacking:
            return found, set()
        try:
            found.update(await self._rebuild(lacking))
        except PyMongoError as exc:
            # Messages keep flowing during a MongoDB outage (sends need only Redis), so an
            # unknown set is taken as empty, asked again next time, and said in the log.
            log.warning("MongoDB unreachable: blocks unknown, taken as none",
                        extra={"users": len(lacking), "error": repr(exc)})
            found.update(dict.fromkeys(lacking, frozenset()))
            return found, set(lacking)
        return found, set()

    async def _rebuild(self, lacking: dict[str, str | None]) -> dict[str, frozenset[str]]:
        """The sets Redis lacks, in one MongoDB query; each stored back unless changed meanwhile."""
        blocked: dict[str, set[str]] = {user_id: set() for user_id in lacking}
        cursor = self.collection.find({"blocker_id": {"$in": list(lacking)}},
                                      projection={"blocker_id": 1, "blocked_id": 1})
        async for raw in cursor:
            blocked[raw["blocker_id"]].add(raw["blocked_id"])
        await run_pipelined(self.redis, self._build, [
            ([keys.blocking(user_id), keys.blocking_changes(user_id)],
             [counter or "", COPY_TTL_SECONDS, *blocked[user_id]])
            for user_id, counter in lacking.items()
        ])
        return {user_id: frozenset(ids) for user_id, ids in blocked.items()}

    async def _announce(self, blocker_id: str) -> None:
        """The change is in MongoDB: drop the Redis copy, this process's, then every other's."""
        await self._changed(keys=[keys.blocking(blocker_id), keys.blocking_changes(blocker_id)],
                            args=[COPY_TTL_SECONDS])
        self._forget(blocker_id)
        await self.redis.publish(keys.BLOCKS_CHANNEL, blocker_id)

    def _remember(self, user_id: str, blocked: frozenset[str], at: float) -> None:
        self._cache.pop(user_id, None)
        if len(self._cache) >= CACHE_SIZE:
            del self._cache[next(iter(self._cache))]  # insertion order: the oldest goes
        self._cache[user_id] = (blocked, at)

    def _forget(self, user_id: str | None) -> None:
        self._forgets += 1
        if user_id is None:
            self._cache.clear()
            self._reading.clear()
        else:  # a read in flight may predate the change: later callers start their own
            self._cache.pop(user_id, None)
            self._reading.pop(user_id, None)

    async def _listen(self) -> None:
        """Runs for the process's lifetime: forgets each user whose blocks changed anywhere."""
        while True:
            try:
                echo_seconds = echo_interval(self.cache_seconds)
                async with self.hub.subscribe(keys.BLOCKS_CHANNEL, echo_seconds=echo_seconds) as subscription:
                    self._notices = subscription
                    async for user_id in subscription:
                        self._forget(user_id)
                return  # the hub closed: shutting down
            except SubscriptionInterrupted as exc:  # notices may be lost: read everything again
                self._forget(None)
                log.warning("block notices interrupted; cache cleared", extra={"reason": exc.reason})
                if isinstance(exc, PubSubConnectionLost):
                    await asyncio.sleep(RESUBSCRIBE_SECONDS)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                self._forget(None)
                log.warning("block notices unavailable, retrying", extra={"error": repr(exc)})
                await asyncio.sleep(RESUBSCRIBE_SECONDS)

