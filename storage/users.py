"""Users: MongoDB is the record, Redis a mirror for fast reads (rebuilt from MongoDB)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError
from redis.asyncio import Redis

from storage.connections import json_commands
from storage.cursors import in_batches
from storage.errors import EmailTaken, UsernameTaken
from storage.hot import UserHot
from storage.ids import new_id

log = logging.getLogger(__name__)

KNOWN_IDS_CACHE_SIZE = 50_000


@dataclass(frozen=True, slots=True)
class StoredUser:
    id: str
    username: str
    created_at: datetime
    last_seen_at: datetime | None


@dataclass(frozen=True, slots=True)
class Credentials:
    user: StoredUser
    password_hash: str
    token_generation: int = 0  # tokens are issued at it (storage/revocations.py)


def _from_raw(raw: dict[str, Any]) -> StoredUser:
    return StoredUser(
        id=raw["_id"], username=raw["username"], created_at=raw["created_at"],
        last_seen_at=raw.get("last_seen_at"),
    )


def _credentials(raw: dict[str, Any]) -> Credentials:
    return Credentials(user=_from_raw(raw), password_hash=raw["password_hash"],
                       token_generation=int(raw.get("token_generation", 0)))


def _from_hot(hot: UserHot) -> StoredUser:
    assert hot.pk is not None  # read from Redis: its key is the user id
    return StoredUser(
        id=hot.pk, username=hot.username, created_at=hot.created_at, last_seen_at=hot.last_seen_at
    )


def _hot_copy(user: StoredUser) -> UserHot:
    return UserHot(
        pk=user.id,
        username=user.username,
        username_lower=user.username.lower(),
        created_at=user.created_at,
        last_seen_at=user.last_seen_at,
    )


class UserStore:
    """Accounts in MongoDB `users` (indexes declared by `UserDoc`) mirrored to Redis (`UserHot`). Every
    read and write goes through this store's own clients, never a model's class-level binding."""

    def __init__(self, redis: Redis, collection: AsyncCollection[dict[str, Any]]) -> None:
        self.redis = redis
        self.collection = collection
        self._json = json_commands(redis)
        self._known_ids: dict[str, None] = {}  # insertion-ordered: the oldest is evicted first

    async def create(self, *, username: str, email: str, password_hash: str) -> StoredUser:
        """Insert the user in MongoDB (the unique indexes arbitrate races), then mirror it."""
        now = datetime.now(UTC)
        raw: dict[str, Any] = {
            "_id": new_id(), "username": username, "username_lower": username.lower(), "email": email,
            "email_lower": email.lower(), "password_hash": password_hash,
            "created_at": now.replace(microsecond=now.microsecond // 1000 * 1000),  # what MongoDB keeps
            "last_seen_at": None,
        }
        try:
            await self.collection.insert_one(raw)
        except DuplicateKeyError as exc:
            details = str(exc.details or exc)
            if "email_lower" in details:
                raise EmailTaken from None
            raise UsernameTaken from None
        user = _from_raw(raw)
        await self._mirror([user])
        return user

    async def find_credentials(self, login: str) -> Credentials | None:
        """The user whose username or email equals `login` ignoring case, with its hash."""
        key = login.lower()
        raw = await self.collection.find_one({"email_lower" if "@" in key else "username_lower": key})
        if raw is None:
            return None
        return _credentials(raw)

    async def find_credentials_by_id(self, user_id: str) -> Credentials | None:
        """The user's credentials by id (changePassword checks the current password)."""
        raw = await self.collection.find_one({"_id": user_id})
        return _credentials(raw) if raw is not None else None

    async def get(self, user_id: str) -> StoredUser | None:
        """From the Redis mirror; on a miss from MongoDB, re-mirroring what was missing."""
        return (await self.get_many([user_id])).get(user_id)

    async def exists(self, user_id: str) -> bool:
        """Whether the user exists; cheaper than `get` on hot paths (every sendMessage).

        Users are never deleted, so a positive answer is kept; a miss asks the Redis mirror
        (EXISTS), then MongoDB through `get`, which re-mirrors.
        """
        if user_id in self._known_ids:
            return True
        exists = bool(await self.redis.exists(UserHot.make_primary_key(user_id))) or await self.get(user_id) is not None
        if exists:
            if len(self._known_ids) >= KNOWN_IDS_CACHE_SIZE:
                del self._known_ids[next(iter(self._known_ids))]
            self._known_ids[user_id] = None
        return exists

    async def get_many(self, user_ids: Sequence[str]) -> dict[str, StoredUser]:
        """Many users in one Redis round-trip; misses are read from MongoDB and re-mirrored."""
        unique = list(dict.fromkeys(user_ids))
        if not unique:
            return {}
        raw = await self._json.mget([UserHot.make_primary_key(i) for i in unique], "$")
        found = {user_id: _from_hot(UserHot.model_validate(doc[0])) for user_id, doc in zip(unique, raw, strict=True)
                 if doc}
        if missing := [user_id for user_id in unique if user_id not in found]:
            archived = [_from_raw(d) async for d in self.collection.find({"_id": {"$in": missing}})]
            await self._mirror(archived)
            found.update((user.id, user) for user in archived)
        return found

    async def page(self, *, first: int, after: str | None) -> list[StoredUser]:
        """Users in creation order (ids are ULIDs), `first` of them after id `after`."""
        query: dict[str, object] = {}
        if after is not None:
            query["_id"] = {"$gt": after}
        return [_from_raw(d) async for d in self.collection.find(query).sort("_id").limit(first)]

    async def reconcile_mirror(self, batch_size: int = 500) -> int:
        """Re-create every Redis user mirror that is missing (e.g. after Redis lost its data).

        Never deletes anything; returns how many users were re-mirrored.
        """
        restored = 0
        async for users in in_batches(self.collection.find().sort("_id"), batch_size, _from_raw):
            async with self.redis.pipeline(transaction=False) as pipe:
                for user in users:
                    pipe.exists(UserHot.make_primary_key(user.id))
                present = await pipe.execute()
            missing = [user for user, exists in zip(users, present, strict=True) if not exists]
            await self._mirror(missing)
            restored += len(missing)
        if restored:
            log.info("re-mirrored users from MongoDB", extra={"restored": restored})
        return restored

    async def set_last_seen_many(self, last_seen_ms: Mapping[str, int]) -> None:
        """When each user's last connection closed (never moving backwards): one MongoDB bulk
        write, then the Redis mirrors in one pipeline."""
        if not last_seen_ms:
            return
        await self.collection.bulk_write([
            UpdateOne({"_id": user_id}, {"$max": {"last_seen_at": datetime.fromtimestamp(at_ms / 1000, UTC)}})
            for user_id, at_ms in last_seen_ms.items()
        ], ordered=False)
        await self._mirror([_from_raw(d) async for d in self.collection.find({"_id": {"$in": list(last_seen_ms)}})])

    async def _mirror(self, users: Sequence[StoredUser]) -> None:
        """Write the Redis copies in one pipeline (redis-om serialises; our client sends)."""
        if not users:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for user in users:
                await _hot_copy(user).save(pipeline=pipe)
            await pipe.execute()
