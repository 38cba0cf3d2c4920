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


@strawberry.type(
    description="A Chattergram account as every signed-in user sees it (the email address is never shown)."
)
class User:
    id: strawberry.ID = strawberry.field(
        description="The user's unique ID (what `receiverId` and `partnerId` take)."
    )
    username: str = strawberry.field(
        description="The name chosen at sign-up, as typed (3-32 characters of A-Z, a-z, 0-9, '_', '.', "
        "'-'); unique ignoring case."
    )
    online: bool = strawberry.field(
        description="True while at least one of the user's WebSocket connections is open, on any "
        "server. A crashed server's connections count as closed within 30 s (PRESENCE_TTL_SECONDS)."
    )
    last_seen_at: datetime | None = strawberry.field(
        description="When the user's last connection closed; null if they never connected over "
        "WebSocket. Written in batches, so it can trail `online` briefly."
    )
    created_at: datetime = strawberry.field(description="When the account was registered.")

    @classmethod
    def from_view(cls, view: UserView) -> User:
        user = view.user
        return cls(
            id=strawberry.ID(user.id), username=user.username, online=view.online,
            last_seen_at=user.last_seen_at, created_at=user.created_at,
        )


@strawberry.type(description="A new session: what `register` and `login` return.")
class AuthPayload:
    token: str = strawberry.field(
        description="JWT access token: send it as 'Authorization: Bearer <token>' on HTTP and in "
        "the WebSocket connection_init payload. Keep it secret: it acts as you until it expires."
    )
    expires_at: datetime = strawberry.field(
        description="When the token stops working (7 days after issue by default, JWT_TTL_SECONDS); "
        "log in again to get a new one."
    )
    user: User = strawberry.field(description="The account the token belongs to.")

    @classmethod
    def from_session(cls, session: Session) -> AuthPayload:
        return cls(token=session.token, expires_at=session.expires_at, user=User.from_view(session.user))


@strawberry.type(description="Where a page sits in its list (Relay-style); cursors are opaque strings.")
class PageInfo:
    has_previous_page: bool = strawberry.field(
        description="In `history`: older messages exist (page back with `before: startCursor`). In "
        "`users` and `conversations`: this page was asked for with `after`."
    )
    has_next_page: bool = strawberry.field(
        description="In `users` and `conversations`: more items follow (ask with `after: endCursor`). "
        "In `history`: this page was asked for with `before`, so newer messages exist."
    )
    start_cursor: str | None = strawberry.field(
        description="The cursor of the page's first item; null when the page is empty."
    )
    end_cursor: str | None = strawberry.field(
        description="The cursor of the page's last item; null when the page is empty."
    )

    @classmethod
    def of(cls, page: Page[Any]) -> PageInfo:
        return cls(
            has_previous_page=page.has_previous_page,
            has_next_page=page.has_next_page,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        )


@strawberry.type(description="A user in a page of `users`, with its cursor.")
class UserEdge:
    cursor: str = strawberry.field(description="Opaque position of this user: pass it as `after`.")
    node: User = strawberry.field(description="The user.")


@strawberry.type(description="A page of users, in sign-up order.")
class UserConnection:
    edges: list[UserEdge] = strawberry.field(description="The users of this page, oldest account first.")
    page_info: PageInfo = strawberry.field(description="Cursors and whether more users follow.")

    @classmethod
    def from_page(cls, page: Page[UserView]) -> UserConnection:
        edges = [UserEdge(cursor=c, node=User.from_view(v)) for v, c in zip(page.items, page.cursors, strict=True)]
        return cls(edges=edges, page_info=PageInfo.of(page))


@strawberry.enum(description="What a message carries.")
class MessageKind(Enum):
    TEXT = strawberry.enum_value("TEXT", description="Typed text, in `text`.")
    VOICE = strawberry.enum_value(
        "VOICE", description="A voice recording, in `audio`; its transcript becomes `text` once transcribed."
    )


@strawberry.enum(description="Where a voice message's transcription stands.")
class TranscriptionStatus(Enum):
    PENDING = strawberry.enum_value(
        "PENDING", description="Queued or running; `text` is \"\" until it is DONE (an UPDATED event follows)."
    )
    DONE = strawberry.enum_value("DONE", description="Transcribed: `text` and `transcript` hold the result.")
    FAILED = strawberry.enum_value(
        "FAILED",
        description="Every attempt failed (or transcription is off); the audio still plays. "
        "`retryTranscription` queues it again.",
    )


@strawberry.type(description="One recognised word of a transcript, with its timing.")
class TranscriptWord:
    word: str = strawberry.field(description="The word as recognised (may carry punctuation).")
    start: float = strawberry.field(description="When the word starts, in seconds from the start of the recording.")
    end: float = strawberry.field(description="When the word ends, in seconds from the start of the recording.")
    confidence: float | None = strawberry.field(
        description="How sure the engine is of this word, 0-1; null if the engine does not say."
    )


@strawberry.type(description="The text recognised in a voice message, with word timings.")
class Transcript:
    text: str = strawberry.field(description="The whole transcript (also the message's `text`).")
    confidence: float | None = strawberry.field(
        description="How sure the engine is of the whole transcript, 0-1; null if it does not say."
    )
    engine: str = strawberry.field(
        description="Which engine transcribed it, e.g. whisper:tiny.en (a local model) or deepgram."
    )
    language: str | None = strawberry.field(
        description="The spoken language as the engine detected it, e.g. en; null if it does not say."
    )
    words: list[TranscriptWord] = strawberry.field(
        description="The words in spoken order with their timings; empty if the engine gave none."
    )

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


@strawberry.type(
    description="A stored voice recording. Only its uploader sees it before it is sent; then only the "
    "message's sender and receiver."
)
class AudioFile:
    id: strawberry.ID = strawberry.field(
        description="The recording's ID: pass it once as `audioId` to sendMessage."
    )
    mime_type: str = strawberry.field(
        description="Detected from the content, not the upload's claim: audio/webm, audio/ogg, "
        "audio/mpeg, audio/wav, audio/mp4, audio/aac or audio/flac."
    )
    size_bytes: int = strawberry.field(description="The stored file's size in bytes.")
    duration_seconds: float | None = strawberry.field(
        description="The recording's length in seconds (millisecond precision); null if unknown."
    )

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


@strawberry.type(description="A message between two users; only its sender and receiver can read it.")
class Message:
    id: strawberry.ID = strawberry.field(description="The message's unique ID.")
    client_id: str | None = strawberry.field(
        description="The sender's idempotency key, as given to sendMessage; null if none was given."
    )
    kind: MessageKind = strawberry.field(description="Typed text or voice.")
    sender_id: strawberry.ID = strawberry.field(description="The ID of the user who sent it.")
    receiver_id: strawberry.ID = strawberry.field(
        description="The ID of the user it was sent to (the sender's own ID for notes to self)."
    )
    text: str = strawberry.field(
        description='The typed text (1-4,000 characters, trimmed, Unicode NFC), or the transcript of a '
        'voice message ("" while pending or failed).'
    )
    sent_at: datetime = strawberry.field(description="When the server accepted the message (millisecond precision).")
    audio: AudioFile | None = strawberry.field(default=None, description="The recording; VOICE only.")
    transcription_status: TranscriptionStatus | None = strawberry.field(
        default=None, description="Where the transcription stands; VOICE only."
    )
    transcript: Transcript | None = strawberry.field(
        default=None, description="The transcript with word timings; VOICE only, once DONE."
    )

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

    @strawberry.field(description="The user who sent it.")
    async def sender(self, info: ContextInfo) -> User:
        return await _load_user(info, str(self.sender_id))

    @strawberry.field(description="The user it was sent to.")
    async def receiver(self, info: ContextInfo) -> User:
        return await _load_user(info, str(self.receiver_id))


async def _load_user(info: ContextInfo, user_id: str) -> User:
    view: UserView | None = await info.context.user_loader.load(user_id)
    if view is None:  # users are never deleted; a dangling id is a bug, not a client error
        raise LookupError(f"user {user_id} of a message is missing")
    return User.from_view(view)


@strawberry.type(description="A message in a page of `history`, with its cursor.")
class MessageEdge:
    cursor: str = strawberry.field(description="Opaque position of this message: pass it as `before`.")
    node: Message = strawberry.field(description="The message.")


@strawberry.type(description="A page of a conversation's messages, oldest first.")
class MessageConnection:
    edges: list[MessageEdge] = strawberry.field(description="The messages of this page, oldest first.")
    page_info: PageInfo = strawberry.field(description="Cursors and whether older messages exist.")

    @classmethod
    def from_page(cls, page: Page[StoredMessage]) -> MessageConnection:
        edges = [
            MessageEdge(cursor=c, node=Message.from_stored(m)) for m, c in zip(page.items, page.cursors, strict=True)
        ]
        return cls(edges=edges, page_info=PageInfo.of(page))


@strawberry.enum(description="What happened to a message.")
class MessageEventType(Enum):
    CREATED = strawberry.enum_value("CREATED", description="The message was sent.")
    UPDATED = strawberry.enum_value(
        "UPDATED", description="The message changed: a voice message's transcription finished, failed or was retried."
    )


@strawberry.type(description="A message you sent or received was created or updated.")
class MessageEvent:
    type: MessageEventType = strawberry.field(description="Created or updated.")
    message: Message = strawberry.field(description="The message as it is now.")

    @classmethod
    def from_stored(cls, event: MessageEventPayload) -> MessageEvent:
        return cls(type=MessageEventType(event.type), message=Message.from_stored(event.message))


@strawberry.type(description="A user went online or offline.")
class PresenceEvent:
    user: User = strawberry.field(description="The user, with `online` as of this event.")
    online: bool = strawberry.field(
        description="True: their first connection opened. False: their last one closed (or their "
        "server stopped answering for 30 s, PRESENCE_TTL_SECONDS)."
    )
    at: datetime = strawberry.field(description="When the change happened.")

    @classmethod
    def from_update(cls, update: PresenceUpdate) -> PresenceEvent:
        return cls(
            user=User.from_view(update.user), online=update.online,
            at=datetime.fromtimestamp(update.at_ms / 1000, UTC),
        )


@strawberry.type(description="A user whose username starts with the query's last word.")
class UserHit:
    user: User = strawberry.field(description="The matching user.")


@strawberry.type(description="One of your messages (typed text or voice transcript) matching the query.")
class MessageHit:
    message: Message = strawberry.field(description="The matching message.")
    snippet: str = strawberry.field(
        description="An excerpt of about 160 characters around the first match, HTML-escaped, with the "
        "matching words in <b>…</b> (… where it was cut)."
    )


SearchHit = Annotated[
    UserHit | MessageHit,
    strawberry.union("SearchHit", description="A search result: a user or one of your messages."),
]


@strawberry.type(description="Search results: matching users first, then messages by relevance (newer first on ties).")
class SearchResults:
    total: int = strawberry.field(
        description="How many users and messages match in all, beyond this page too (counting only "
        "what you may see)."
    )
    hits: list[SearchHit] = strawberry.field(description="At most `first` hits: users, then messages.")

    @classmethod
    def from_outcome(cls, outcome: SearchOutcome) -> SearchResults:
        hits: list[UserHit | MessageHit] = [
            MessageHit(message=Message.from_stored(hit.message), snippet=hit.snippet)
            if isinstance(hit, MessageFound) else UserHit(user=User.from_view(hit))
            for hit in outcome.hits
        ]
        return cls(total=outcome.total, hits=hits)


@strawberry.type(description="Your conversation with one partner, as only you see it.")
class Conversation:
    partner_id: strawberry.Private[str]
    last_message: Message | None = strawberry.field(
        description="The most recent message either of you sent; null if there is none."
    )
    unread_count: int = strawberry.field(description="Messages from the partner after your read marker.")
    last_read_at: datetime | None = strawberry.field(
        description="When you last moved your read marker (markRead); null if never."
    )
    partner_last_read_at: datetime | None = strawberry.field(
        description="When the partner last moved theirs (read receipts); null if never."
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

    @strawberry.field(description="The other user (yourself, for notes to self).")
    async def partner(self, info: ContextInfo) -> User:
        return await _load_user(info, self.partner_id)


@strawberry.type(description="A conversation in a page of `conversations`, with its cursor.")
class ConversationEdge:
    cursor: str = strawberry.field(description="Opaque position of this conversation: pass it as `after`.")
    node: Conversation = strawberry.field(description="The conversation.")


@strawberry.type(description="A page of your conversations, most recent activity first.")
class ConversationConnection:
    edges: list[ConversationEdge] = strawberry.field(
        description="The conversations of this page, most recent activity first."
    )
    page_info: PageInfo = strawberry.field(description="Cursors and whether more conversations follow.")

    @classmethod
    def from_page(cls, page: Page[ConversationView]) -> ConversationConnection:
        edges = [ConversationEdge(cursor=c, node=Conversation.from_view(v))
                 for v, c in zip(page.items, page.cursors, strict=True)]
        return cls(edges=edges, page_info=PageInfo.of(page))


@strawberry.enum(description="What the partner did.")
class ConversationEventType(Enum):
    READ = strawberry.enum_value("READ", description="They moved their read marker forward, to `upTo`.")
    TYPING_STARTED = strawberry.enum_value(
        "TYPING_STARTED", description="They started typing (sent at most once per 2 s)."
    )
    TYPING_STOPPED = strawberry.enum_value(
        "TYPING_STOPPED", description="They stopped typing, or about 5 s passed since they last said they type."
    )


@strawberry.type(description="The partner read your messages up to `upTo`, or started/stopped typing.")
class ConversationEvent:
    type: ConversationEventType = strawberry.field(description="Read receipt, or typing started/stopped.")
    partner_id: strawberry.ID = strawberry.field(description="The ID of the partner who read or types.")
    at: datetime = strawberry.field(description="When it happened.")
    up_to: strawberry.ID | None = strawberry.field(
        description="READ only: the ID of the newest message the partner has read; null otherwise."
    )

    @classmethod
    def from_stored(cls, event: StoredConversationEvent) -> ConversationEvent:
        return cls(
            type=ConversationEventType(event.type),
            partner_id=strawberry.ID(event.partner_id),
            at=datetime.fromtimestamp(event.at_ms / 1000, UTC),
            up_to=strawberry.ID(event.up_to) if event.up_to else None,
        )
