"""Token revocation: which tokens stopped working before they expire.

Two kinds, both keyed by user (one Redis Cluster slot per user, `{u:<user id>}`):
- a user's token *generation*: every token carries the generation it was issued at, and one of
  an older generation is revoked (logoutEverywhere, changePassword raise it). MongoDB `users`
  holds the record (`token_generation`, raised with `$inc`); Redis a copy that expires and is
  restored from MongoDB when missing, so a Redis data loss never brings revoked tokens back;
- a denylist of single token ids (logout), in Redis only, each entry expiring with its token.

Checking is on every request's path, so each process keeps what it learnt: every instance
hears each revocation on one pub/sub channel at once and applies it to its cache (then the API
closes that token's WebSockets). A token found valid is not asked about again while the notices
are known to arrive: the channel echoes a probe a few times per `cache_seconds` (storage.pubsub),
and an answer stays good `cache_seconds` after the newest echo that came back behind every
earlier notice. When the connection breaks the cache is cleared; when it dies silently the
echoes stop, so an instance may accept a revoked token for at most `cache_seconds` either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from storage import keys
from storage.pubsub import (
    PubSubConnectionLost,
    PubSubHub,
    Subscription,
    SubscriptionInterrupted,
    current_until,
    echo_interval,
)

log = logging.getLogger(__name__)

CACHE_SIZE = 50_000  # tokens found valid, and users' generations, remembered per process
RESUBSCRIBE_SECONDS = 1.0

# KEYS: the generation copy. ARGV: a generation, TTL seconds. Never lowers it; returns the result.
_RAISE_GENERATION = """
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
local offered = tonumber(ARGV[1])
if offered > current then current = offered end
redis.call('SET', KEYS[1], current, 'EX', ARGV[2])
return current
"""


@dataclass(frozen=True, slots=True)
class Revocation:
    """One notice: `token_id` was revoked, or every token of `user_id` below `generation`."""

    user_id: str
    token_id: str | None = None
    generation: int | None = None

    def covers(self, user_id: str, token_id: str, generation: int) -> bool:
        if user_id != self.user_id:
            return False
        if self.token_id is not None:
            return token_id == self.token_id
        return self.generation is not None and generation < self.generation


def _bounded_set(cache: dict[str, Any], key: str, value: Any) -> None:
    cache.pop(key, None)
    if len(cache) >= CACHE_SIZE:
        del cache[next(iter(cache))]  # insertion order: the oldest goes
    cache[key] = value


class RevocationStore:
    def __init__(self, redis: Redis, users: AsyncCollection[dict[str, Any]], hub: PubSubHub, *,
                 token_ttl_seconds: int, cache_seconds: float) -> None:
        self.redis = redis
        self.users = users
        self.hub = hub
        self.token_ttl_seconds = token_ttl_seconds
        self.cache_seconds = cache_seconds
        self._raise_generation = redis.register_script(_RAISE_GENERATION)
        self._generations: dict[str, int] = {}  # user id -> the highest generation seen
        self._denied: dict[str, float] = {}  # revoked token id -> its expiry (epoch seconds)
        self._valid: dict[str, float] = {}  # token id -> monotonic time of the read that found it valid
        self._notices: Subscription | None = None  # while listening: vouches for the cache

    def known_revoked(self, user_id: str, token_id: str, generation: int) -> bool | None:
        """What this process knows without asking Redis: True revoked, False valid (checked
        recently), None unknown."""
        if token_id in self._denied or generation < self._generations.get(user_id, 0):
            return True
        checked = self._valid.get(token_id)
        if checked is None:
            return None
        return False if time.monotonic() - current_until(self._notices, checked) < self.cache_seconds else None

    async def is_revoked(self, user_id: str, token_id: str, generation: int) -> bool:
        """Whether the token is revoked: from the cache, else one Redis round-trip (MongoDB too
        when Redis lost the user's generation)."""
        known = self.known_revoked(user_id, token_id, generation)
        if known is not None:
            return known
        read_at = time.monotonic()
        current, denied = await self.redis.mget(keys.token_generation(user_id), keys.revoked_token(user_id, token_id))
        certain = True
        if current is not None:
            current = int(current)
        else:
            try:
                current = await self._restore_generation(user_id)
            except PyMongoError as exc:
                # Redis drops a generation only when the last token it could revoke has expired:
                # then 0 is what it meant. (Only Redis losing its data during a MongoDB outage
                # makes this wrong, until MongoDB answers: asked again on every request.)
                log.warning("MongoDB unreachable: token generation unknown, taken as 0",
                            extra={"user": user_id, "error": repr(exc)})
                current, certain = 0, False
        if certain:
            self._learn_generation(user_id, current)
        if denied is not None:
            self._deny(token_id, time.time() + self.token_ttl_seconds)
            return True
        if generation < current:
            return True
        if certain:
            _bounded_set(self._valid, token_id, read_at)
        return False

    async def generation(self, user_id: str) -> int:
        """The user's current token generation (new tokens are issued at it)."""
        current = await self.redis.get(keys.token_generation(user_id))
        return int(current) if current is not None else await self._restore_generation(user_id)

    async def new_user(self, user_id: str) -> None:
        """A user just created is at generation 0: the Redis copy says so now, so their first
        requests never ask MongoDB (nor wait for it during an outage)."""
        current = int(await self._raise_generation(keys=[keys.token_generation(user_id)],
                                                   args=[0, self.token_ttl_seconds]))
        self._learn_generation(user_id, current)

    async def revoke_token(self, user_id: str, token_id: str, expires_at: datetime) -> None:
        """One token stops working (logout), on every instance."""
        ttl_ms = max(1, int((expires_at - datetime.now(UTC)).total_seconds() * 1000))
        await self.redis.set(keys.revoked_token(user_id, token_id), "1", px=ttl_ms)
        self._deny(token_id, expires_at.timestamp())
        await self._announce(Revocation(user_id=user_id, token_id=token_id))

    async def revoke_all(self, user_id: str, *, new_password_hash: str | None = None) -> int:
        """Every token the user holds stops working, on every instance; returns the new
        generation (tokens issued at it work). With `new_password_hash`, the password is
        replaced in the same MongoDB write: never a moment where the new password works and
        the old tokens still do."""
        update: dict[str, Any] = {"$inc": {"token_generation": 1}}
        if new_password_hash is not None:
            update["$set"] = {"password_hash": new_password_hash}
        raw = await self.users.find_one_and_update(
            {"_id": user_id}, update, projection={"token_generation": 1}, return_document=ReturnDocument.AFTER
        )
        if raw is None:
            raise LookupError(f"no user {user_id}")
        current = int(await self._raise_generation(keys=[keys.token_generation(user_id)],
                                                   args=[int(raw["token_generation"]), self.token_ttl_seconds]))
        self._learn_generation(user_id, current)
        await self._announce(Revocation(user_id=user_id, generation=current))
        return current

    async def notices(self) -> AsyncIterator[Revocation]:
        """Every revocation announced by any instance (this one's included), already applied to
        this process's cache; runs until cancelled."""
        while True:
            try:
                echo_seconds = echo_interval(self.cache_seconds)
                async with self.hub.subscribe(keys.REVOCATIONS_CHANNEL, echo_seconds=echo_seconds) as subscription:
                    self._notices = subscription
                    async for data in subscription:
                        notice = self._parse(data)
                        if notice is not None:
                            self._apply(notice)
                            yield notice
            except SubscriptionInterrupted as exc:  # the hub lost its connection, or we fell behind
                self._valid.clear()  # notices may be lost: ask Redis again
                log.warning("revocation notices interrupted; validity cache cleared", extra={"reason": exc.reason})
                if isinstance(exc, PubSubConnectionLost):
                    await asyncio.sleep(RESUBSCRIBE_SECONDS)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:  # subscribing failed
                self._valid.clear()
                log.warning("revocation notices unavailable, retrying", extra={"error": repr(exc)})
                await asyncio.sleep(RESUBSCRIBE_SECONDS)

    async def _restore_generation(self, user_id: str) -> int:
        raw = await self.users.find_one({"_id": user_id}, projection={"token_generation": 1})
        stored = int((raw or {}).get("token_generation", 0))
        return int(await self._raise_generation(keys=[keys.token_generation(user_id)],
                                                args=[stored, self.token_ttl_seconds]))

    async def _announce(self, notice: Revocation) -> None:
        message = {"u": notice.user_id, "j": notice.token_id, "g": notice.generation}
        await self.redis.publish(keys.REVOCATIONS_CHANNEL, orjson.dumps(message).decode())

    def _apply(self, notice: Revocation) -> None:
        if notice.token_id is not None:
            self._deny(notice.token_id, time.time() + self.token_ttl_seconds)
        if notice.generation is not None:
            self._learn_generation(notice.user_id, notice.generation)

    def _learn_generation(self, user_id: str, generation: int) -> None:
        if generation > self._generations.get(user_id, 0):
            _bounded_set(self._generations, user_id, generation)

    def _deny(self, token_id: str, expires_at: float) -> None:
        self._valid.pop(token_id, None)
        if len(self._denied) >= CACHE_SIZE:  # expired ones go first
            now = time.time()
            for expired in [t for t, at in self._denied.items() if at <= now]:
                del self._denied[expired]
        _bounded_set(self._denied, token_id, expires_at)

    @staticmethod
    def _parse(data: str) -> Revocation | None:
        with contextlib.suppress(ValueError, TypeError, KeyError):
            raw = orjson.loads(data)
            generation = raw.get("g")
            return Revocation(user_id=str(raw["u"]), token_id=raw.get("j"),
                              generation=int(generation) if generation is not None else None)
        log.warning("unreadable revocation notice", extra={"data": data[:200]})
        return None
