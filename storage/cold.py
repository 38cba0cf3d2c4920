"""The durable record in MongoDB (Beanie documents)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from beanie import Document, Indexed
from pydantic import BaseModel, Field
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
    conversation_id: str
    sender_id: str
    receiver_id: str | None = None  # DIRECT only
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
            IndexModel([("conversation_id", ASCENDING), ("_id", DESCENDING)], name="conversation_messages"),
            IndexModel([("conversation_id", ASCENDING), ("sender_id", ASCENDING), ("_id", ASCENDING)],
                       name="conversation_sender"),
            # voice messages still to transcribe (re-queued after Redis lost their jobs): few
            IndexModel([("transcription_status", ASCENDING)], name="pending_transcriptions",
                       partialFilterExpression={"transcription_status": "PENDING"}),
        ]


class MemberDoc(BaseModel):
    user_id: str
    role: str  # OWNER, ADMIN or MEMBER
    joined_at: datetime


class ConversationDoc(Document):
    """A conversation: DIRECT (two members, or one for notes to self; its `_id` is derived from
    the pair, see `storage.ids.direct_conversation_id`) or GROUP. `version` grows with every
    change, so Redis never keeps an older copy over a newer one."""

    id: str  # type: ignore[assignment]  # Beanie declares an ObjectId id; ours is a ULID
    kind: str
    title: str | None = None
    members: list[MemberDoc]
    version: int
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None  # a group whose last member left

    class Settings:
        name = "conversations"
        indexes: ClassVar[list[IndexModel]] = [IndexModel([("members.user_id", ASCENDING)], name="by_member")]


class ReadMarkerDoc(Document):
    """How far a member has read a conversation; `_id` is `<conversation id>:<user id>`. Written
    by the persister from the outbox; `up_to` only ever moves forward ($max)."""

    id: str  # type: ignore[assignment]  # Beanie declares an ObjectId id; ours is conversation:user
    conversation_id: str
    user_id: str
    up_to: str
    at: datetime

    class Settings:
        name = "read_markers"
        indexes: ClassVar[list[IndexModel]] = [IndexModel([("conversation_id", ASCENDING)], name="by_conversation")]


DOCUMENT_MODELS: list[type[Document]] = [UserDoc, MessageDoc, ConversationDoc, ReadMarkerDoc]
