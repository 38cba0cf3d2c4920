"""Use cases: send a message, read one, page through a conversation's history."""

from __future__ import annotations

import dataclasses
import unicodedata
from datetime import UTC, datetime

from resolvers.access import parse_id, visible_message
from resolvers.context import Context
from resolvers.cursors import decode_cursor, encode_cursor, page_info
from resolvers.errors import Conflict, InvalidInput, NotFound
from schema.types import (
    AudioFile,
    Message,
    MessageConnection,
    MessageEdge,
    MessageKind,
    Transcript,
    TranscriptionStatus,
    TranscriptWord,
)
from storage import archive, users
from storage.ids import id_timestamp_ms, new_id
from storage.keys import conversation_id
from storage.messages import FirstMessageNotHot, StoredAudio, StoredMessage

MAX_TEXT = 4000
MAX_CLIENT_ID = 128
MAX_HISTORY_PAGE = 200
MESSAGE_CURSOR = "msg"


def to_public_message(message: StoredMessage) -> Message:
    audio = message.audio
    transcript = message.transcript
    return Message(
        id=message.id,  # type: ignore[arg-type]
        client_id=message.client_id,
        kind=MessageKind(message.kind),
        sender_id=message.sender_id,  # type: ignore[arg-type]
        receiver_id=message.receiver_id,  # type: ignore[arg-type]
        text=message.text,
        sent_at=datetime.fromtimestamp(message.sent_at_ms / 1000, UTC),
        audio=AudioFile(
            id=audio.id,  # type: ignore[arg-type]
            mime_type=audio.mime_type,
            size_bytes=audio.size_bytes,
            duration_seconds=audio.duration_seconds,
        ) if audio else None,
        transcription_status=TranscriptionStatus(message.transcription_status)
        if message.transcription_status else None,
        transcript=Transcript(
            text=transcript.text,
            confidence=transcript.confidence,
            engine=transcript.engine,
            language=transcript.language,
            words=[TranscriptWord(word=w.word, start=w.start, end=w.end, confidence=w.confidence)
                   for w in transcript.words],
        ) if transcript else None,
    )


def normalise_text(text: str) -> str:
    text = unicodedata.normalize("NFC", text).strip()
    if not text:
        raise InvalidInput("text must not be empty", field="text")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"text must be at most {MAX_TEXT} characters", field="text")
    if "\x00" in text:
        raise InvalidInput("text must not contain NUL characters", field="text")
    return text


def validate_client_id(client_id: str | None) -> str | None:
    if client_id is None:
        return None
    if not 1 <= len(client_id) <= MAX_CLIENT_ID or not client_id.isprintable():
        raise InvalidInput(f"clientId must be 1-{MAX_CLIENT_ID} printable characters", field="clientId")
    return client_id


async def send_message(
    ctx: Context, *, receiver_id: str, text: str | None, audio_id: str | None, client_id: str | None
) -> Message:
    sender_id = ctx.require_viewer()
    await ctx.rate_limit("send_message", sender_id)
    receiver_id = parse_id(receiver_id, field="receiverId")
    if text is not None and audio_id is not None:
        raise InvalidInput("give either text or audioId, not both", field="audioId")
    if text is None and audio_id is None:
        raise InvalidInput("text or audioId is required", field="text")
    text = normalise_text(text) if text is not None else None
    audio_id = parse_id(audio_id, field="audioId") if audio_id is not None else None
    client_id = validate_client_id(client_id)
    if not await users.user_exists(receiver_id):
        raise NotFound("receiver not found", field="receiverId")
    store = ctx.services.messages
    message_id = new_id()
    message = StoredMessage(
        id=message_id,
        kind=MessageKind.TEXT.value,
        sender_id=sender_id,
        receiver_id=receiver_id,
        text=text or "",
        sent_at_ms=id_timestamp_ms(message_id),
        client_id=client_id,
    )
    if audio_id is None:
        return to_public_message(await _send(ctx, message))
    if client_id is not None and (first_id := await store.client_message_id(sender_id, client_id)):
        first = await find_message(ctx, first_id)
        if first is not None:  # a retry of a voice send that already went through
            return to_public_message(first)
    return to_public_message(await _send_voice(ctx, message, audio_id))


async def _send_voice(ctx: Context, message: StoredMessage, audio_id: str) -> StoredMessage:
    """Claim the upload (at most once, only the uploader's), then store the message."""
    audio_store = ctx.services.audio
    record = await audio_store.claim(audio_id=audio_id, owner_id=message.sender_id, message_id=message.id)
    if record is None:
        existing = await audio_store.get(audio_id)
        if existing is None or existing.owner_id != message.sender_id:
            raise NotFound("audio not found", field="audioId")
        raise Conflict("this recording was already sent", field="audioId")
    voice = dataclasses.replace(
        message,
        kind=MessageKind.VOICE.value,
        audio=StoredAudio(record.id, record.mime_type, record.size_bytes, record.duration_seconds),
        transcription_status=TranscriptionStatus.PENDING.value,
    )
    try:
        stored = await _send(ctx, voice)
    except BaseException:
        await audio_store.release(audio_id=audio_id, message_id=message.id)
        raise
    if stored.id != voice.id:  # the same clientId won a race meanwhile: give the upload back
        await audio_store.release(audio_id=audio_id, message_id=message.id)
    return stored


async def _send(ctx: Context, message: StoredMessage) -> StoredMessage:
    """Store `message`, or return the first message of its clientId wherever it lives now."""
    try:
        stored, _created = await ctx.services.messages.send(message)
    except FirstMessageNotHot as gone:
        first = await archive.get_message(gone.message_id)
        if first is None:
            raise
        return first
    return stored


async def find_message(ctx: Context, message_id: str) -> StoredMessage | None:
    """From the hot window, else from the archive."""
    return await ctx.services.messages.get(message_id) or await archive.get_message(message_id)


async def message(ctx: Context, *, message_id: str) -> Message:
    viewer_id = ctx.require_viewer()
    message_id = parse_id(message_id, field="id")
    return to_public_message(visible_message(viewer_id, await find_message(ctx, message_id)))


async def history(ctx: Context, *, partner_id: str, last: int, before: str | None) -> MessageConnection:
    """Newest `last` messages older than `before`, oldest first: Redis, then MongoDB.

    Redis always holds the newest part of a conversation (trimming goes oldest first and
    stops at anything not yet archived), so continuing in MongoDB strictly below the oldest
    id Redis returned can neither skip nor repeat a message. MongoDB is asked only for
    conversations marked as having archive-only messages, so recent conversations read
    from Redis alone (and stay readable while MongoDB is down).
    """
    viewer_id = ctx.require_viewer()
    partner_id = parse_id(partner_id, field="partnerId")
    if not 1 <= last <= MAX_HISTORY_PAGE:
        raise InvalidInput(f"last must be between 1 and {MAX_HISTORY_PAGE}", field="last")
    before_id = None
    if before is not None:
        before_id = parse_id(decode_cursor(before, MESSAGE_CURSOR, field="before"), field="before")
    if not await users.user_exists(partner_id):
        raise NotFound("partner not found", field="partnerId")
    conversation = conversation_id(viewer_id, partner_id)
    store = ctx.services.messages
    ids = await store.page_ids(conversation, before=before_id, limit=last + 1)
    newest_first = await store.get_many(ids)
    if len(newest_first) < last + 1 and await archive.has_archived_only_messages(
        ctx.services.redis, conversation
    ):
        floor = newest_first[-1].id if newest_first else before_id
        newest_first += await archive.page(conversation, before=floor, limit=last + 1 - len(newest_first))
    has_previous = len(newest_first) > last
    page = list(reversed(newest_first[:last]))
    edges = [MessageEdge(cursor=encode_cursor(MESSAGE_CURSOR, m.id), node=to_public_message(m)) for m in page]
    return MessageConnection(
        edges=edges,
        page_info=page_info(edges, has_previous_page=has_previous, has_next_page=before_id is not None),
    )
