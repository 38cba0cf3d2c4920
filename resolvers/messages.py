"""Use cases: send a message, read one, page through a conversation's history."""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from resolvers.access import addressed_conversation, exactly_one, now_ms, parse_id, visible_message
from resolvers.context import Context
from resolvers.cursors import Page, decode_cursor, encode_cursor
from resolvers.errors import Conflict, InvalidInput, NotFound
from storage.ids import id_timestamp_ms, new_id
from storage.messages import NOT_A_MEMBER, NOT_MIRRORED, with_id
from storage.records import StoredAudio, StoredConversation, StoredMessage

MAX_TEXT = 4000
MAX_CLIENT_ID = 128
DEFAULT_HISTORY_PAGE = 50
MAX_HISTORY_PAGE = 200
MESSAGE_CURSOR = "msg"


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
    ctx: Context, *, conversation_id: str | None, receiver_id: str | None, text: str | None, audio_id: str | None,
    client_id: str | None, reply_to_id: str | None = None,
) -> StoredMessage:
    sender_id = ctx.require_viewer()
    await ctx.rate_limit("send_message", sender_id)
    exactly_one(conversation_id, receiver_id, other="receiverId")
    if text is not None and audio_id is not None:
        raise InvalidInput("give either text or audioId, not both", field="audioId")
    if text is None and audio_id is None:
        raise InvalidInput("text or audioId is required", field="text")
    text = normalise_text(text) if text is not None else None
    audio_id = parse_id(audio_id, field="audioId") if audio_id is not None else None
    client_id = validate_client_id(client_id)
    reply_to_id = parse_id(reply_to_id, field="replyToId") if reply_to_id is not None else None
    conversation = await addressed_conversation(
        ctx, sender_id, conversation_id=conversation_id, partner_id=receiver_id, create=True, partner_field="receiverId"
    )
    assert conversation is not None
    if reply_to_id is not None:  # a read only for replies: plain sends stay one script call
        await _replied_in(ctx, conversation, reply_to_id)
    message_id = new_id()
    message = StoredMessage(
        id=message_id,
        kind="TEXT",
        conversation_id=conversation.id,
        sender_id=sender_id,
        receiver_id=conversation.partner_of(sender_id),
        text=text or "",
        sent_at_ms=id_timestamp_ms(message_id),
        client_id=client_id,
        reply_to_id=reply_to_id,
    )
    if client_id is not None:
        reserved = await ctx.runtime.messages.reserve_client_id(message)
        if isinstance(reserved, str):  # this clientId was used before
            first = await ctx.runtime.messages.find(reserved)
            if first is not None:
                return first
            message = with_id(message, reserved)  # its send never landed: make it, under its id
    if audio_id is None:
        return await _store(ctx, message, conversation.member_ids())
    return await _send_voice(ctx, message, audio_id, conversation.member_ids())


async def _replied_in(ctx: Context, conversation: StoredConversation, message_id: str) -> StoredMessage:
    """The message replied to: it must be in the conversation the sender (a member) writes in."""
    found = await ctx.runtime.messages.find(message_id, conversation_id=conversation.id)
    if found is None or found.conversation_id != conversation.id:
        raise NotFound("message not found", field="replyToId")
    return found


def make_reply_loader(ctx: Context) -> DataLoader[tuple[str, str], StoredMessage | None]:
    """Batches the replyTo lookups of one execution (a history page: one read, not one each)."""

    async def load(refs: list[tuple[str, str]]) -> list[StoredMessage | None]:
        found = await ctx.runtime.messages.find_many(refs)
        return [found.get(message_id) for _, message_id in refs]

    return DataLoader(load_fn=load, cache=False)  # no cache: each read shows the current state


async def replied_to(ctx: Context, *, conversation_id: str, reply_to_id: str) -> StoredMessage | None:
    """The current state of a replied-to message (a tombstone once deleted). It is in the
    reply's conversation, so whoever sees the reply may see it."""
    if ctx.reply_loader is None:
        ctx.reply_loader = make_reply_loader(ctx)
    found: StoredMessage | None = await ctx.reply_loader.load((conversation_id, reply_to_id))
    return found


async def _store(ctx: Context, message: StoredMessage, members: Sequence[str]) -> StoredMessage:
    """Run the send script, which also moves the lists of `members` (as read before it)."""
    runtime = ctx.runtime
    outcome = await runtime.messages.send(message, members=members)
    if outcome.status == NOT_MIRRORED:  # Redis lost the conversation since we read it: mirror, retry
        if message.receiver_id is not None:  # DIRECT: from MongoDB, or made again
            await runtime.conversations.make_direct(message.sender_id, message.receiver_id, now_ms())
        else:
            await runtime.conversations.get(message.conversation_id)
        outcome = await runtime.messages.send(message, members=members)
    if outcome.status in (NOT_A_MEMBER, NOT_MIRRORED) or outcome.message is None:
        raise NotFound("conversation not found", field="conversationId")
    # Added to a group since it was read: the add put the group in their list; now the message moves it.
    if joined := set(outcome.member_ids) - set(members):
        await runtime.conversation_lists.touch(joined, message.conversation_id, message.sent_at_ms)
    return outcome.message


async def _send_voice(ctx: Context, message: StoredMessage, audio_id: str, members: Sequence[str]) -> StoredMessage:
    """Claim the upload (at most once, only the uploader's), then store the message."""
    audio_store = ctx.runtime.audio
    record = await audio_store.claim(audio_id=audio_id, owner_id=message.sender_id, message_id=message.id)
    if record is None:
        existing = await audio_store.get(audio_id)
        if existing is None or existing.owner_id != message.sender_id:
            raise NotFound("audio not found", field="audioId")
        raise Conflict("this recording was already sent", field="audioId")
    voice = dataclasses.replace(
        message,
        kind="VOICE",
        audio=StoredAudio(record.id, record.mime_type, record.size_bytes, record.duration_seconds,
                          waveform=record.waveform, speech_segments=record.speech_segments),
        transcription_status="PENDING",
    )
    try:
        return await _store(ctx, voice, members)
    except BaseException:
        await audio_store.release(audio_id=audio_id, message_id=message.id)
        raise


async def message(ctx: Context, *, message_id: str) -> StoredMessage:
    viewer_id = ctx.require_viewer()
    message_id = parse_id(message_id, field="id")
    return await visible_message(ctx, viewer_id, await ctx.runtime.messages.find(message_id))


async def history(
    ctx: Context, *, conversation_id: str | None, partner_id: str | None, last: int | None, before: str | None
) -> Page[StoredMessage]:
    """The newest `last` messages older than the cursor `before`, oldest first."""
    viewer_id = ctx.require_viewer()
    last = DEFAULT_HISTORY_PAGE if last is None else last  # an explicit null means the default
    if not 1 <= last <= MAX_HISTORY_PAGE:
        raise InvalidInput(f"last must be between 1 and {MAX_HISTORY_PAGE}", field="last")
    before_id = None
    if before is not None:
        before_id = parse_id(decode_cursor(before, MESSAGE_CURSOR, field="before"), field="before")
    conversation = await addressed_conversation(
        ctx, viewer_id, conversation_id=conversation_id, partner_id=partner_id, create=False
    )
    if conversation is None:  # a partner never written to: an empty history
        return Page(items=[], cursors=[], has_previous_page=False, has_next_page=before_id is not None)
    newest_first = await ctx.runtime.messages.page(conversation.id, before=before_id, limit=last + 1)
    page = list(reversed(newest_first[:last]))
    return Page(
        items=page,
        cursors=[encode_cursor(MESSAGE_CURSOR, m.id) for m in page],
        has_previous_page=len(newest_first) > last,
        has_next_page=before_id is not None,
    )
