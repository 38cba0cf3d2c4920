"""Reported messages, for operators: MongoDB `reports`, with the message as it was when reported.

One document per (message, reporter), `_id` "<message id>:<reporter id>": reporting the same
message again replaces the reason and the snapshot instead of piling up copies.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from storage.records import StoredMessage


@dataclass(frozen=True, slots=True)
class StoredReport:
    message_id: str
    conversation_id: str
    sender_id: str
    reporter_id: str
    reason: str
    kind: str  # TEXT or VOICE
    text: str
    transcript: str | None  # a VOICE message's transcript, if it had one when reported
    sent_at: datetime
    reported_at: datetime

    @classmethod
    def of(cls, message: StoredMessage, *, reporter_id: str, reason: str, at: datetime) -> StoredReport:
        return cls(
            message_id=message.id, conversation_id=message.conversation_id, sender_id=message.sender_id,
            reporter_id=reporter_id, reason=reason, kind=message.kind, text=message.text,
            transcript=message.transcript.text if message.transcript else None,
            sent_at=datetime.fromtimestamp(message.sent_at_ms / 1000, UTC), reported_at=at,
        )

    def to_document(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id, "conversation_id": self.conversation_id, "sender_id": self.sender_id,
            "reporter_id": self.reporter_id, "reason": self.reason, "kind": self.kind, "text": self.text,
            "transcript": self.transcript, "sent_at": self.sent_at, "reported_at": self.reported_at,
        }

    @classmethod
    def from_document(cls, raw: dict[str, Any]) -> StoredReport:
        values: dict[str, Any] = {f.name: raw.get(f.name) for f in dataclasses.fields(cls)}
        return cls(**values)


class ReportStore:
    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self.collection = collection

    async def create_indexes(self) -> None:
        await self.collection.create_index([("reported_at", -1)], name="newest")

    async def add(self, report: StoredReport) -> None:
        await self.collection.replace_one(
            {"_id": f"{report.message_id}:{report.reporter_id}"}, report.to_document(), upsert=True
        )

    async def newest(self, limit: int) -> list[StoredReport]:
        cursor = self.collection.find({}, projection={"_id": 0}).sort([("reported_at", -1), ("_id", -1)])
        return [StoredReport.from_document(raw) async for raw in cursor.limit(limit)]
