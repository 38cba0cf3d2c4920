"""Object types of the public schema, each built from what the resolvers return."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from resolvers.auth import Session
from resolvers.context import Context
from resolvers.conversations import ConversationView
from resolvers.cursors import Page
from resolvers.search import MessageFound, SearchOutcome
from resolvers.subscriptions import PresenceUpdate
from resolvers.users import UserView
from storage.audio import AudioRecord
from storage.conversations import ConversationEvent as StoredConversationEvent
from storage.records import MessageEventPayload, StoredAudio, StoredMessage, StoredTranscript

ContextInfo = Info[Context, None]


def at_ms(ms: int | None) -> datetime | None:
    """A UTC datetime from epoch milliseconds (None stays None, as does 0: never set)."""
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


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

    @classmethod
    def from_view(cls, view: UserView) -> User:
        user = view.user
        return cls(
            id=strawberry.ID(user.id), username=user.username, online=view.online,
            last_seen_at=user.last_seen_at, created_at=user.created_at,
        )


@strawberry.type(description="The result of register and login.")
class AuthPayload:
    token: str = strawberry.field(
        description="JWT access token: send it as 'Authorization: Bearer <token>' on HTTP and in "
        "the WebSocket connection_init payload."
    )
    expires_at: datetime
    user: User

    @classmethod
    def from_session(cls, session: Session) -> AuthPayload:
        return cls(token=session.token, expires_at=session.expires_at, user=User.from_view(session.user))


@strawberry.type(description="Relay-style page information.")
class PageInfo:
    has_previous_page: bool
    has_next_page: bool
    start_cursor: str | None
    end_cursor: str | None

    @classmethod
    def of(cls, page: Page[Any]) -> PageInfo:
        return cls(
            has_previous_page=page.has_previous_page,
            has_next_page=page.has_next_page,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        )


@strawberry.type
class UserEdge:
    cursor: str
    node: User


@strawberry.type
class UserConnection:
    edges: list[UserEdge]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: Page[UserView]) -> UserConnection:
        edges = [UserEdge(cursor=c, node=User.from_view(v)) for v, c in zip(page.items, page.cursors, strict=True)]
        return cls(edges=edges, page_info=PageInfo.of(page))


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

    @classmethod
    def from_stored(cls, transcript: StoredTranscript) -> Transcript:
        return cls(
            text=transcript.text,
            confidence=transcript.confidence,
            engine=transcript.engine,
            language=transcript.language,
            words=[TranscriptWord(word=w.word, start=w.start, end=w.end, confidence=w.confidence)
                   for w in transcript.words],
        )


@strawberry.type(description="A stored voice recording.")
class AudioFile:
    id: strawberry.ID
    mime_type: str = strawberry.field(description="Detected from the content, not the upload's claim.")
    size_bytes: int
    duration_seconds: float | None

    @classmethod
    def from_stored(cls, audio: StoredAudio | AudioRecord) -> AudioFile:
        return cls(
            id=strawberry.ID(audio.id), mime_type=audio.mime_type, size_bytes=audio.size_bytes,
            duration_seconds=audio.duration_seconds,
        )

    @strawberry.field(
        description="A signed URL to GET the recording (HTTP Range supported); it expires "
        "(1 hour by default), so fetch a fresh one from the message when needed."
    )
    def url(self, info: ContextInfo) -> str:
        return info.context.media_url(str(self.id))


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

    @classmethod
    def from_stored(cls, message: StoredMessage) -> Message:
        return cls(
            id=strawberry.ID(message.id),
            client_id=message.client_id,
            kind=MessageKind(message.kind),
            sender_id=strawberry.ID(message.sender_id),
            receiver_id=strawberry.ID(message.receiver_id),
            text=message.text,
            sent_at=datetime.fromtimestamp(message.sent_at_ms / 1000, UTC),
            audio=AudioFile.from_stored(message.audio) if message.audio else None,
            transcription_status=TranscriptionStatus(message.transcription_status)
            if message.transcription_status else None,
            transcript=Transcript.from_stored(message.transcript) if message.transcript else None,
        )

    @strawberry.field
    async def sender(self, info: ContextInfo) -> User:
        return await _load_user(info, str(self.sender_id))

    @strawberry.field
    async def receiver(self, info: ContextInfo) -> User:
        return await _load_user(info, str(self.receiver_id))


async def _load_user(info: ContextInfo, user_id: str) -> User:
    view: UserView | None = await info.context.user_loader.load(user_id)
    if view is None:  # users are never deleted; a dangling id is a bug, not a client error
        raise LookupError(f"user {user_id} of a message is missing")
    return User.from_view(view)


@strawberry.type
class MessageEdge:
    cursor: str
    node: Message


@strawberry.type
class MessageConnection:
    edges: list[MessageEdge]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: Page[StoredMessage]) -> MessageConnection:
        edges = [
            MessageEdge(cursor=c, node=Message.from_stored(m)) for m, c in zip(page.items, page.cursors, strict=True)
        ]
        return cls(edges=edges, page_info=PageInfo.of(page))


@strawberry.enum
class MessageEventType(Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"


@strawberry.type(description="A message the viewer sent or received was created or updated.")
class MessageEvent:
    type: MessageEventType
    message: Message

    @classmethod
    def from_stored(cls, event: MessageEventPayload) -> MessageEvent:
        return cls(type=MessageEventType(event.type), message=Message.from_stored(event.message))


@strawberry.type(description="A user went online or offline.")
class PresenceEvent:
    user: User
    online: bool
    at: datetime

    @classmethod
    def from_update(cls, update: PresenceUpdate) -> PresenceEvent:
        return cls(
            user=User.from_view(update.user), online=update.online,
            at=datetime.fromtimestamp(update.at_ms / 1000, UTC),
        )


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

    @classmethod
    def from_outcome(cls, outcome: SearchOutcome) -> SearchResults:
        hits: list[UserHit | MessageHit] = [
            MessageHit(message=Message.from_stored(hit.message), snippet=hit.snippet)
            if isinstance(hit, MessageFound) else UserHit(user=User.from_view(hit))
            for hit in outcome.hits
        ]
        return cls(total=outcome.total, hits=hits)


@strawberry.type(description="A conversation of the viewer with one partner.")
class Conversation:
    partner_id: strawberry.Private[str]
    last_message: Message | None = strawberry.field(description="The most recent message.")
    unread_count: int = strawberry.field(description="Messages from the partner after your read marker.")
    last_read_at: datetime | None = strawberry.field(description="When you last moved your read marker.")
    partner_last_read_at: datetime | None = strawberry.field(
        description="When the partner last moved theirs (read receipts)."
    )

    @classmethod
    def from_view(cls, view: ConversationView) -> Conversation:
        state = view.state
        return cls(
            partner_id=state.partner_id,
            last_message=Message.from_stored(view.last_message) if view.last_message else None,
            unread_count=state.unread,
            last_read_at=at_ms(state.read_at_ms),
            partner_last_read_at=at_ms(state.partner_read_at_ms),
        )

    @strawberry.field
    async def partner(self, info: ContextInfo) -> User:
        return await _load_user(info, self.partner_id)


@strawberry.type
class ConversationEdge:
    cursor: str
    node: Conversation


@strawberry.type
class ConversationConnection:
    edges: list[ConversationEdge]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: Page[ConversationView]) -> ConversationConnection:
        edges = [ConversationEdge(cursor=c, node=Conversation.from_view(v))
                 for v, c in zip(page.items, page.cursors, strict=True)]
        return cls(edges=edges, page_info=PageInfo.of(page))


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

    @classmethod
    def from_stored(cls, event: StoredConversationEvent) -> ConversationEvent:
        return cls(
            type=ConversationEventType(event.type),
            partner_id=strawberry.ID(event.partner_id),
            at=datetime.fromtimestamp(event.at_ms / 1000, UTC),
            up_to=strawberry.ID(event.up_to) if event.up_to else None,
        )
