"""The durable record in MongoDB (Beanie documents)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from beanie import Document, Indexed
from pydantic import Field
from pymongo import ASCENDING, DESCENDING, IndexModel

from storage.ids import new_id


def utcnow() -> datetime:
    return datetime.now(UTC)


class UserDoc(Document):
    """A user account. Uniqueness ignoring case is enforced by unique indexes on the
    lower-cased copies, so concurrent registrations cannot both succeed."""

    id: str = Field(default_factory=new_id)  # type: ignore[assignment]  # Beanie declares an ObjectId id; ours is a ULID
    username: str
    username_lower: Annotated[str, Indexed(unique=True)]
    email: str
    email_lower: Annotated[str, Indexed(unique=True)]
    password_hash: str
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime | None = None

    class Settings:
        name = "users"


class MessageDoc(Document):
    """A message as archived; `_id` is the message id the API returns (a ULID string).

    Written only by the persister (idempotent upserts from the Redis outbox)."""

    id: str  # type: ignore[assignment]  # Beanie declares an ObjectId id; ours is the message ULID
    client_id: str | None = None
    kind: str
    sender_id: str
    receiver_id: str
    conversation: str
    text: str
    sent_at: datetime
    sent_at_ms: int
    audio: dict[str, Any] | None = None
    transcription_status: str | None = None
    transcript: dict[str, Any] | None = None
    rev: int = 0

    class Settings:
        name = "messages"
        indexes: ClassVar[list[IndexModel]] = [
            IndexModel([("conversation", ASCENDING), ("_id", DESCENDING)], name="conversation_history"),
            IndexModel([("sender_id", ASCENDING)], name="by_sender"),
            IndexModel([("receiver_id", ASCENDING)], name="by_receiver"),
        ]


class ReadMarkerDoc(Document):
    """How far a user has read a conversation; `_id` is `<user id>:<partner id>`. Written by
    the persister from the outbox; `up_to` only ever moves forward ($max)."""

    id: str  # type: ignore[assignment]  # Beanie declares an ObjectId id; ours is user:partner
    user_id: str
    partner_id: str
    up_to: str
    at: datetime

    class Settings:
        name = "read_markers"


DOCUMENT_MODELS: list[type[Document]] = [UserDoc, MessageDoc, ReadMarkerDoc]
