"""Messages, their voice recordings and transcripts, their pages and events."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

from resolvers import conversations as conversing
from resolvers import messages as messaging
from resolvers.cursors import Page
from schema.node import Node
from schema.paging import PageInfo, at_ms, edges_of, utc
from schema.users import ContextInfo, User, load_user
from storage.audio import AudioRecord
from storage.records import MessageEventPayload, StoredAudio, StoredMessage, StoredTranscript

if TYPE_CHECKING:
    from schema.conversations import Conversation


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


@strawberry.type(description="A span of a recording, in seconds from its start.")
class TimeRange:
    start: float = strawberry.field(description="Where it starts, in seconds (two decimals).")
    end: float = strawberry.field(description="Where it ends, in seconds (two decimals; at most the duration).")


@strawberry.type(
    description="A stored voice recording. Only its uploader sees it before it is sent; then only the "
    "members of the conversation it was sent in."
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
    waveform: list[float] = strawberry.field(
        description="What the recording looks like, for drawing its player: 64 peaks evenly spaced over it, "
        "each 0-1 with two decimals (scaled so the loudest is 1, a quiet recording at most 20 times; silence "
        "stays about 0). Computed once at upload; empty for recordings uploaded before waveforms existed."
    )
    speech_segments: list[TimeRange] = strawberry.field(
        description="Where someone speaks, in order, as a voice-activity detector (Silero VAD) hears it at "
        "upload; pauses under 0.6 s stay inside a segment, so a player can skip the gaps between them. Empty "
        "for a recording without speech, and for recordings uploaded before speech maps existed."
    )
    conversation_id: strawberry.Private[str | None] = None  # where it was sent (None: not yet)

    @classmethod
    def from_stored(cls, audio: StoredAudio | AudioRecord, conversation_id: str | None = None) -> AudioFile:
        return cls(
            id=strawberry.ID(audio.id), mime_type=audio.mime_type, size_bytes=audio.size_bytes,
            duration_seconds=audio.duration_seconds, conversation_id=conversation_id,
            waveform=list(audio.waveform),
            speech_segments=[TimeRange(start=start, end=end) for start, end in audio.speech_segments],
        )

    @strawberry.field(
        description="A signed URL to GET the recording (HTTP Range supported), for you only: it "
        "expires (1 hour by default; fetch a fresh one from the message when needed) and stops "
        "working (404) once you are no longer a member of the conversation."
    )
    def url(self, info: ContextInfo) -> str:
        return info.context.media_url(str(self.id), self.conversation_id)


@strawberry.type(description="One emoji members reacted to a message with.")
class Reaction:
    emoji: str = strawberry.field(description="The emoji (one emoji grapheme).")
    count: int = strawberry.field(description="How many members reacted with it (at least 1).")
    reacted_by_me: bool = strawberry.field(description="Whether you are one of them.")


@strawberry.type(
    description="A message in a conversation; only the conversation's current members can read it."
)
class Message(Node):
    id: strawberry.ID = strawberry.field(description="The message's unique ID.")
    conversation_id: strawberry.ID = strawberry.field(description="The ID of the conversation it belongs to.")
    client_id: str | None = strawberry.field(
        description="The sender's idempotency key, as given to sendMessage; null if none was given."
    )
    kind: MessageKind = strawberry.field(description="Typed text or voice.")
    sender_id: strawberry.ID = strawberry.field(description="The ID of the user who sent it.")
    receiver_id: strawberry.ID | None = strawberry.field(
        description="DIRECT conversations: the ID of the other member (the sender's own ID for notes to "
        "self). Null in a group."
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
    reply_to_id: strawberry.Private[str | None] = None  # what replyTo resolves
    edited_at: datetime | None = strawberry.field(
        default=None, description="When its sender last edited the text (editMessage); null if never."
    )
    deleted_at: datetime | None = strawberry.field(
        default=None,
        description='When its sender deleted it for everyone (deleteMessage): a tombstone, with text "", no '
        "audio, no transcript and no reactions. Null if not deleted.",
    )
    stored_reactions: strawberry.Private[tuple[tuple[str, tuple[str, ...]], ...]] = ()

    @classmethod
    def from_stored(cls, message: StoredMessage) -> Message:
        return cls(
            id=strawberry.ID(message.id),
            conversation_id=strawberry.ID(message.conversation_id),
            client_id=message.client_id,
            kind=MessageKind(message.kind),
            sender_id=strawberry.ID(message.sender_id),
            receiver_id=strawberry.ID(message.receiver_id) if message.receiver_id else None,
            text=message.text,
            sent_at=utc(message.sent_at_ms),
            audio=AudioFile.from_stored(message.audio, message.conversation_id) if message.audio else None,
            transcription_status=TranscriptionStatus(message.transcription_status)
            if message.transcription_status else None,
            transcript=Transcript.from_stored(message.transcript) if message.transcript else None,
            reply_to_id=message.reply_to_id,
            edited_at=at_ms(message.edited_at_ms),
            deleted_at=at_ms(message.deleted_at_ms),
            stored_reactions=message.reactions,
        )

    @strawberry.field(
        description="The emoji members reacted with (react / unreact), in the order first used, each with "
        "its count and whether you are among them; empty if none."
    )
    def reactions(self, info: ContextInfo) -> list[Reaction]:
        viewer_id = info.context.viewer_id
        return [Reaction(emoji=emoji, count=len(users), reacted_by_me=viewer_id in users)
                for emoji, users in self.stored_reactions]

    @strawberry.field(description="The user who sent it.")
    async def sender(self, info: ContextInfo) -> User:
        return await load_user(info, str(self.sender_id))

    @strawberry.field(description="DIRECT conversations: the other member. Null in a group.")
    async def receiver(self, info: ContextInfo) -> User | None:
        return await load_user(info, str(self.receiver_id)) if self.receiver_id else None

    @strawberry.field(
        description="The message this one replies to (sendMessage's `replyToId`), always in the same "
        "conversation, as it is now: edited text, or a tombstone (`deletedAt` set) once deleted. Null "
        "if it is not a reply, and on a tombstone (which keeps nothing of what it said)."
    )
    async def reply_to(self, info: ContextInfo) -> Message | None:
        if self.reply_to_id is None or self.deleted_at is not None:
            return None
        found = await messaging.replied_to(
            info.context, conversation_id=str(self.conversation_id), reply_to_id=self.reply_to_id
        )
        return Message.from_stored(found) if found is not None else None

    @strawberry.field(description="The conversation it belongs to, as you see it (NOT_FOUND once you left it).")
    async def conversation(
        self, info: ContextInfo
    ) -> Annotated[Conversation, strawberry.lazy("schema.conversations")]:
        from schema.conversations import Conversation

        view = await conversing.conversation(info.context, conversation_id=str(self.conversation_id))
        return Conversation.from_view(view)


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
        edges = edges_of(page, lambda cursor, message: MessageEdge(cursor=cursor, node=Message.from_stored(message)))
        return cls(edges=edges, page_info=PageInfo.of(page))


@strawberry.enum(description="What happened to a message.")
class MessageEventType(Enum):
    CREATED = strawberry.enum_value("CREATED", description="The message was sent.")
    UPDATED = strawberry.enum_value(
        "UPDATED", description="The message changed: a voice message's transcription finished, failed or was "
        "retried, its sender edited it, or a reaction was added or taken back."
    )
    DELETED = strawberry.enum_value(
        "DELETED", description="Its sender deleted it for everyone; the event's message is the tombstone."
    )


@strawberry.type(description="A message in one of your conversations was created, updated or deleted.")
class MessageEvent:
    type: MessageEventType = strawberry.field(description="Created, updated or deleted.")
    message: Message = strawberry.field(description="The message as it is now.")

    @classmethod
    def from_stored(cls, event: MessageEventPayload) -> MessageEvent:
        return cls(type=MessageEventType(event.type), message=Message.from_stored(event.message))
