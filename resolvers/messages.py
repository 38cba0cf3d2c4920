"""Use cases: send a message, read one, page through a conversation's history."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

from resolvers.access import parse_id, visible_message
from resolvers.context import Context
from resolvers.cursors import decode_cursor, encode_cursor
from resolvers.errors import InvalidInput, NotFound
from schema.types import Message, MessageConnection, MessageEdge, MessageKind, PageInfo
from storage import archive, users
from storage.ids import id_timestamp_ms, new_id
from storage.keys import conversation_id
from storage.messages import StoredMessage

MAX_TEXT = 4000
MAX_CLIENT_ID = 128
MAX_HISTORY_PAGE = 200
MESSAGE_CURSOR = "msg"


def to_public_message(message: StoredMessage) -> Message:
    return Message(
        id=message.id,  # type: ignore[arg-type]
        client_id=message.client_id,
        kind=MessageKind(message.kind),
        sender_id=message.sender_id,  # type: ignore[arg-type]
        receiver_id=message.receiver_id,  # type: ignore[arg-type]
        text=message.text,
        sent_at=datetime.fromtimestamp(message.sent_at_ms / 1000, UTC),
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


async def send_message(ctx: Context, *, receiver_id: str, text: str | None, client_id: str | None) -> Message:
    sender_id = ctx.require_viewer()
    receiver_id = parse_id(receiver_id, field="receiverId")
    if text is None:
        raise InvalidInput("text is required", field="text")
    text = normalise_text(text)
    client_id = validate_client_id(client_id)
    if await users.get_user(receiver_id) is None:
        raise NotFound("receiver not found", field="receiverId")
    message_id = new_id()
    message = StoredMessage(
        id=message_id,
        kind=MessageKind.TEXT.value,
        sender_id=sender_id,
        receiver_id=receiver_id,
        text=text,
        sent_at_ms=id_timestamp_ms(message_id),
        client_id=client_id,
    )
    stored, _created = await ctx.services.messages.send(message)
    return to_public_message(stored)


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
    if await users.get_user(partner_id) is None:
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
        page_info=PageInfo(
            has_previous_page=has_previous,
            has_next_page=before_id is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )
