"""Read markers in MongoDB `read_markers`: how far each user has read each conversation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection


class ReadMarkerArchive:
    """Written by the persister from the outbox; `up_to` only ever moves forward ($max)."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self.collection = collection

    async def persist(self, entries: list[dict[str, str]]) -> None:
        """Outbox entries of kind `read` (user, partner, up_to, at ms)."""
        if not entries:
            return
        operations = [
            UpdateOne(
                {"_id": f"{e['user']}:{e['partner']}"},
                {"$max": {"up_to": e["up_to"], "at": datetime.fromtimestamp(int(e["at"]) / 1000, UTC)},
                 "$setOnInsert": {"user_id": e["user"], "partner_id": e["partner"]}},
                upsert=True,
            )
            for e in entries
        ]
        await self.collection.bulk_write(operations, ordered=False)

    async def of_user(self, user_id: str) -> dict[str, dict[str, Any]]:
        """Partner id -> the user's marker document (`up_to`, `at`)."""
        return {doc["partner_id"]: doc async for doc in self.collection.find({"user_id": user_id})}
