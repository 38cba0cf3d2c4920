"""Read markers in MongoDB `read_markers`: how far each member has read each conversation."""

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
        """Outbox entries of kind `read` (conversation, user, up_to, at ms)."""
        if not entries:
            return
        operations = [
            UpdateOne(
                {"_id": f"{e['conversation']}:{e['user']}"},
                {"$max": {"up_to": e["up_to"], "at": datetime.fromtimestamp(int(e["at"]) / 1000, UTC)},
                 "$setOnInsert": {"conversation_id": e["conversation"], "user_id": e["user"]}},
                upsert=True,
            )
            for e in entries
        ]
        await self.collection.bulk_write(operations, ordered=False)

    async def of_conversation(self, conversation_id: str) -> dict[str, tuple[str, int]]:
        """Member id -> (id of the last message read, ms when the marker moved)."""
        return {
            doc["user_id"]: (doc["up_to"], int(doc["at"].replace(tzinfo=doc["at"].tzinfo or UTC).timestamp() * 1000))
            async for doc in self.collection.find({"conversation_id": conversation_id})
        }
