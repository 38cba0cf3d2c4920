"""Messages as the storage layer hands them out: plain frozen records, the same in Redis,
MongoDB and pub/sub events."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class StoredAudio:
    id: str
    mime_type: str
    size_bytes: int
    duration_seconds: float | None
    # The player's map, copied from the upload (~0.5 kB of JSON): history needs no read of the
    # audio record. Empty for recordings uploaded before the map existed.
    waveform: tuple[float, ...] = ()  # 0-1 peaks evenly spaced over the recording
    speech_segments: tuple[tuple[float, float], ...] = ()  # (start, end) seconds of speech

    def __post_init__(self) -> None:
        # JSON hands back lists: keep records equal (and hashable) whichever way they were made.
        object.__setattr__(self, "waveform", tuple(self.waveform))  # no copy when it is a tuple already
        object.__setattr__(self, "speech_segments", tuple((start, end) for start, end in self.speech_segments))


@dataclass(frozen=True, slots=True)
class StoredWord:
    word: str
    start: float
    end: float
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class StoredTranscript:
    text: str
    engine: str
    confidence: float | None = None
    language: str | None = None
    words: tuple[StoredWord, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredTranscript:
        return cls(
            text=data["text"],
            engine=data["engine"],
            confidence=data.get("confidence"),
            language=data.get("language"),
            words=tuple(StoredWord(**w) for w in data.get("words") or ()),
        )


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: str
    kind: str
    conversation_id: str
    sender_id: str
    receiver_id: str | None  # the other member of a DIRECT conversation; None in a group
    text: str
    sent_at_ms: int
    client_id: str | None = None
    reply_to_id: str | None = None  # the message this one quotes, in the same conversation
    audio: StoredAudio | None = None  # VOICE only
    transcription_status: str | None = None  # VOICE only: PENDING, DONE, FAILED
    transcript: StoredTranscript | None = None  # VOICE only, once DONE
    rev: int = 0  # bumped by every update; trimming keeps a message until MongoDB has this rev
    edited_at_ms: int | None = None  # TEXT only, set by an edit
    deleted_at_ms: int | None = None  # set on a tombstone (deleted for everyone)
    # (emoji, ids of the users who reacted with it), oldest emoji first; at most 20 emoji, each
    # with at most one entry per member of the conversation (MAX_GROUP_MEMBERS bounds it).
    reactions: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def to_document(self) -> dict[str, Any]:
        """The JSON stored in Redis, in `MessageHot`'s shape; built field by field because it
        runs on every send (`asdict` deep-copies)."""
        document = {
            "pk": self.id,
            "kind": self.kind,
            "conversation_id": self.conversation_id,
            "sender_id": self.sender_id,
            "receiver_id": self.receiver_id,
            "text": self.text,
            "sent_at_ms": self.sent_at_ms,
            "client_id": self.client_id,
            "audio": asdict(self.audio) if self.audio else None,
            "transcription_status": self.transcription_status,
            "transcript": asdict(self.transcript) if self.transcript else None,
            "rev": self.rev,
            "edited_at_ms": self.edited_at_ms,
            "deleted_at_ms": self.deleted_at_ms,
            "reactions": [{"emoji": e, "user_ids": list(u)} for e, u in self.reactions] if self.reactions else [],
        }
        if self.reply_to_id is not None:  # only on replies: other documents stay as small as before
            document["reply_to_id"] = self.reply_to_id
        return document

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> StoredMessage:
        return cls(
            id=doc["pk"],
            kind=doc["kind"],
            conversation_id=doc["conversation_id"],
            sender_id=doc["sender_id"],
            receiver_id=doc.get("receiver_id"),
            text=doc["text"],
            sent_at_ms=int(doc["sent_at_ms"]),
            client_id=doc.get("client_id"),
            reply_to_id=doc.get("reply_to_id"),
            audio=StoredAudio(**doc["audio"]) if doc.get("audio") else None,
            transcription_status=doc.get("transcription_status"),
            transcript=StoredTranscript.from_dict(doc["transcript"]) if doc.get("transcript") else None,
            rev=int(doc.get("rev", 0)),
            edited_at_ms=doc.get("edited_at_ms"),
            deleted_at_ms=doc.get("deleted_at_ms"),
            reactions=tuple((r["emoji"], tuple(r["user_ids"])) for r in rs) if (rs := doc.get("reactions")) else (),
        )


@dataclass(frozen=True, slots=True)
class MessageEventPayload:
    type: str
    message: StoredMessage

    def encode(self, document: dict[str, Any] | None = None) -> bytes:
        """`document`: the message's `to_document()`, when the caller has built it already."""
        return orjson.dumps({"type": self.type, "message": document or self.message.to_document()})

    @classmethod
    def decode(cls, raw: bytes | str) -> MessageEventPayload:
        data = orjson.loads(raw)
        return cls(type=data["type"], message=StoredMessage.from_document(data["message"]))


def tombstone(message: StoredMessage, at_ms: int) -> StoredMessage:
    """What stays of a deleted message: who sent it where and when, and when it was deleted."""
    return dataclasses.replace(message, text="", audio=None, transcription_status=None, transcript=None,
                               reactions=(), edited_at_ms=None, deleted_at_ms=at_ms)


def next_revision(message: StoredMessage, **changes: Any) -> StoredMessage:
    """`message` with `changes` and the next revision number."""
    return dataclasses.replace(message, rev=message.rev + 1, **changes)


ROLES = ("OWNER", "ADMIN", "MEMBER")


@dataclass(frozen=True, slots=True)
class StoredMember:
    user_id: str
    role: str  # OWNER, ADMIN or MEMBER
    joined_ms: int


@dataclass(frozen=True, slots=True)
class StoredConversation:
    """A conversation as MongoDB `conversations` holds it and Redis mirrors it. `version` grows
    with every change of members, roles or title, so an older copy never overwrites a newer."""

    id: str
    kind: str  # DIRECT or GROUP
    members: tuple[StoredMember, ...]
    version: int
    created_ms: int
    title: str | None = None  # GROUP only
    archived: bool = False  # a group whose last member left: kept, never shown again

    def member(self, user_id: str) -> StoredMember | None:
        return next((m for m in self.members if m.user_id == user_id), None)

    def member_ids(self) -> list[str]:
        return [m.user_id for m in self.members]

    def partner_of(self, user_id: str) -> str | None:
        """DIRECT only: the other member (yourself, in notes to self)."""
        if self.kind != "DIRECT":
            return None
        others = [m.user_id for m in self.members if m.user_id != user_id]
        return others[0] if others else user_id
