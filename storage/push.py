"""Web Push subscriptions, in MongoDB: one document per endpoint (unique), owned by one user.

A browser's PushSubscription is re-registered whenever the page opts in again, so registering
an endpoint already known replaces it (keys and owner: whoever is signed in on that browser
now). Each user keeps at most `max_per_user`; registering one more drops their oldest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection


@dataclass(frozen=True, slots=True)
class StoredPushSubscription:
    user_id: str
    endpoint: str
    p256dh: str  # the browser's P-256 public key, base64url (65 bytes, uncompressed)
    auth: str  # its authentication secret, base64url (16 bytes)


class PushSubscriptionStore:
    def __init__(self, collection: AsyncCollection[dict[str, Any]], *, max_per_user: int = 10) -> None:
        self.collection = collection
        self.max_per_user = max_per_user

    async def create_indexes(self) -> None:
        # The endpoint is the document's _id (unique); the worker reads by user.
        await self.collection.create_index([("user_id", 1), ("created_at", 1)])

    async def register(self, subscription: StoredPushSubscription) -> None:
        await self.collection.update_one(
            {"_id": subscription.endpoint},
            {"$set": {"user_id": subscription.user_id, "p256dh": subscription.p256dh, "auth": subscription.auth,
                      "created_at": datetime.now(UTC)}},
            upsert=True,
        )
        mine = self.collection.find({"user_id": subscription.user_id}, {"_id": 1}).sort("created_at", -1)
        endpoints = [doc["_id"] async for doc in mine]
        if len(endpoints) > self.max_per_user:  # the oldest go
            await self.collection.delete_many({"_id": {"$in": endpoints[self.max_per_user:]},
                                               "user_id": subscription.user_id})

    async def unregister(self, user_id: str, endpoint: str) -> bool:
        """Remove one of the user's subscriptions; False if they have none at that endpoint."""
        deleted = await self.collection.delete_one({"_id": endpoint, "user_id": user_id})
        return deleted.deleted_count == 1

    async def remove_gone(self, subscription: StoredPushSubscription) -> None:
        """The push service said this subscription is gone (404/410): forget it, unless it was
        registered again meanwhile with other keys."""
        await self.collection.delete_one({"_id": subscription.endpoint, "user_id": subscription.user_id,
                                          "p256dh": subscription.p256dh, "auth": subscription.auth})

    async def of_users(self, user_ids: Sequence[str]) -> list[StoredPushSubscription]:
        if not user_ids:
            return []
        cursor = self.collection.find({"user_id": {"$in": list(user_ids)}})
        return [StoredPushSubscription(user_id=doc["user_id"], endpoint=doc["_id"], p256dh=doc["p256dh"],
                                       auth=doc["auth"]) async for doc in cursor]

    async def of_user(self, user_id: str) -> list[StoredPushSubscription]:
        return await self.of_users([user_id])
