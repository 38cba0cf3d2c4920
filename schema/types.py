"""Object types of the public schema (names fixed by ../shared/API.md)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry


@strawberry.type(description="A Chattergram account as other users see it.")
class User:
    id: strawberry.ID
    username: str
    online: bool = strawberry.field(
        description="True while at least one of the user's WebSocket connections is open."
    )
    last_seen_at: datetime | None = strawberry.field(
        description="When the user's last connection closed (UTC); null if never connected."
    )
    created_at: datetime


@strawberry.type(description="The result of register and login.")
class AuthPayload:
    token: str = strawberry.field(
        description="JWT access token: send it as 'Authorization: Bearer <token>' on HTTP and in "
        "the WebSocket connection_init payload."
    )
    expires_at: datetime
    user: User


@strawberry.type(description="Relay-style page information.")
class PageInfo:
    has_previous_page: bool
    has_next_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class UserEdge:
    cursor: str
    node: User


@strawberry.type
class UserConnection:
    edges: list[UserEdge]
    page_info: PageInfo


@strawberry.enum(description="What a message carries.")
class MessageKind(Enum):
    TEXT = "TEXT"
    VOICE = "VOICE"


@strawberry.enum(description="Where a voice message's transcription stands.")
class TranscriptionStatus(Enum):
    PENDING = "PENDING"
    DONE = "DONE"
    FAILED = "FAILED"


@strawberry.type(description="One transcribed word with its timing in seconds.")
class TranscriptWord:
    word: str
    start: float
    end: float
    confidence: float | None


@strawberry.type(description="The text recognised in a voice message.")
class Transcript:
    text: str
    confidence: float | None = strawberry.field(description="0-1, as reported by the engine.")
    engine: str = strawberry.field(description="e.g. whisper:tiny.en or deepgram.")
    language: str | None
    words: list[TranscriptWord]


@strawberry.type(description="A stored voice recording.")
class AudioFile:
    id: strawberry.ID
    mime_type: str = strawberry.field(description="Detected from the content, not the upload's claim.")
    size_bytes: int
    duration_seconds: float | None

    @strawberry.field(
        description="A signed URL to GET the recording (HTTP Range supported); it expires "
        "(1 hour by default), so fetch a fresh one from the message when needed."
    )
    def url(self, info: strawberry.Info) -> str:
        return info.context.media_url(str(self.id))  # type: ignore[no-any-return]


@strawberry.type(description="A message between two users; only they can read it.")
class Message:
    id: strawberry.ID
    client_id: str | None = strawberry.field(
        description="The sender's idempotency key, as given to sendMessage."
    )
    kind: MessageKind
    sender_id: strawberry.ID
    receiver_id: strawberry.ID
    text: str = strawberry.field(
        description='The typed text, or the transcript of a voice message ("" while pending).'
    )
    sent_at: datetime
    audio: AudioFile | None = strawberry.field(default=None, description="VOICE only.")
    transcription_status: TranscriptionStatus | None = strawberry.field(
        default=None, description="VOICE only."
    )
    transcript: Transcript | None = strawberry.field(default=None, description="VOICE only, once DONE.")

    @strawberry.field
    async def sender(self, info: strawberry.Info) -> User:
        return await _load_user(info, str(self.sender_id))

    @strawberry.field
    async def receiver(self, info: strawberry.Info) -> User:
        return await _load_user(info, str(self.receiver_id))


async def _load_user(info: strawberry.Info, user_id: str) -> User:
    user = await info.context.user_loader.load(user_id)
    if user is None:  # users are never deleted; a dangling id is a bug, not a client error
        raise LookupError(f"user {user_id} of a message is missing")
    return user  # type: ignore[no-any-return]


@strawberry.type
class MessageEdge:
    cursor: str
    node: Message


@strawberry.type
class MessageConnection:
    edges: list[MessageEdge]
    page_info: PageInfo


@strawberry.enum
class MessageEventType(Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"


@strawberry.type(description="A message the viewer sent or received was created or updated.")
class MessageEvent:
    type: MessageEventType
    message: Message


@strawberry.type(description="A user went online or offline.")
class PresenceEvent:
    user: User
    online: bool
    at: datetime


@strawberry.type(description="A user whose username starts with the query's last word.")
class UserHit:
    user: User


@strawberry.type(description="One of your messages (typed text or voice transcript) matching the query.")
class MessageHit:
    message: Message
    snippet: str = strawberry.field(
        description="A short excerpt, HTML-escaped, with the matching words in <b>…</b>."
    )


SearchHit = Annotated[UserHit | MessageHit, strawberry.union("SearchHit")]


@strawberry.type(description="Search results: matching users first, then messages by relevance (newer first on ties).")
class SearchResults:
    total: int = strawberry.field(description="How many users and messages match (only what you may see).")
    hits: list[SearchHit]


@strawberry.type(description="A conversation of the viewer with one partner.")
class Conversation:
    partner_id: strawberry.Private[str]
    last_message: Message | None = strawberry.field(description="The most recent message.")
    unread_count: int = strawberry.field(description="Messages from the partner after your read marker.")
    last_read_at: datetime | None = strawberry.field(description="When you last moved your read marker.")
    partner_last_read_at: datetime | None = strawberry.field(
        description="When the partner last moved theirs (read receipts)."
    )

    @strawberry.field
    async def partner(self, info: strawberry.Info) -> User:
        return await _load_user(info, self.partner_id)


@strawberry.type
class ConversationEdge:
    cursor: str
    node: Conversation


@strawberry.type
class ConversationConnection:
    edges: list[ConversationEdge]
    page_info: PageInfo


@strawberry.enum
class ConversationEventType(Enum):
    READ = "READ"
    TYPING_STARTED = "TYPING_STARTED"
    TYPING_STOPPED = "TYPING_STOPPED"


@strawberry.type(description="The partner read your messages up to `upTo`, or started/stopped typing.")
class ConversationEvent:
    type: ConversationEventType
    partner_id: strawberry.ID
    at: datetime
    up_to: strawberry.ID | None
