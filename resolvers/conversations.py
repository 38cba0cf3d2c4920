"""Use cases: the conversations list, read receipts, typing notices."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from datetime import UTC, datetime

from resolvers.access import parse_id, visible_message
from resolvers.context import Context
from resolvers.cursors import decode_cursor, encode_cursor, page_info
from resolvers.errors import InvalidInput, NotFound
from resolvers.messages import find_message, to_public_message
from schema.types import (
    Conversation,
    ConversationConnection,
    ConversationEdge,
    ConversationEvent,
    ConversationEventType,
)
from storage import archive, keys, users
from storage.conversations import ConversationEvent as StoredEvent
from storage.conversations import ConversationState
from storage.messages import StoredMessage

MAX_PAGE = 100
CONVERSATION_CURSOR = "conv"


def _at(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


async def _last_messages(ctx: Context, viewer_id: str, partners: list[str]) -> dict[str, StoredMessage]:
    """The newest message of each conversation: from the hot window, else the archive."""
    redis = ctx.services.redis
    async with redis.pipeline(transaction=False) as pipe:
        for partner in partners:
            pipe.zrange(keys.conversation_messages(keys.conversation_id(viewer_id, partner)), "+", "-",
                        desc=True, bylex=True, offset=0, num=1)
        newest = await pipe.execute()
    hot = {m.id: m for m in await ctx.services.messages.get_many([ids[0] for ids in newest if ids])}
    found: dict[str, StoredMessage] = {}
    for partner, ids in zip(partners, newest, strict=True):
        if ids and ids[0] in hot:
            found[partner] = hot[ids[0]]
        else:
            archived = await archive.page(keys.conversation_id(viewer_id, partner), before=None, limit=1)
            if archived:
                found[partner] = archived[0]
    return found


def _to_public(state: ConversationState, last: StoredMessage | None) -> Conversation:
    return Conversation(
        partner_id=state.partner_id,
        last_message=to_public_message(last) if last else None,
        unread_count=state.unread,
        last_read_at=_at(state.read_at_ms),
        partner_last_read_at=_at(state.partner_read_at_ms),
    )


async def _existing_partner(partner_id: str) -> str:
    partner_id = parse_id(partner_id, field="partnerId")
    if not await users.user_exists(partner_id):
        raise NotFound("partner not found", field="partnerId")
    return partner_id


async def conversations(ctx: Context, *, first: int, after: str | None) -> ConversationConnection:
    viewer_id = ctx.require_viewer()
    if not 0 <= first <= MAX_PAGE:
        raise InvalidInput(f"first must be between 0 and {MAX_PAGE}", field="first")
    position = None
    if after is not None:
        ms, _, partner = decode_cursor(after, CONVERSATION_CURSOR, field="after").partition(":")
        if not ms.isdigit() or not partner:
            raise InvalidInput("Malformed cursor", field="after")
        position = (int(ms), partner)
    states, has_more = await ctx.services.conversations.page(viewer_id, first=first, after=position)
    lasts = await _last_messages(ctx, viewer_id, [s.partner_id for s in states])
    edges = [
        ConversationEdge(
            cursor=encode_cursor(CONVERSATION_CURSOR, f"{s.last_activity_ms}:{s.partner_id}"),
            node=_to_public(s, lasts.get(s.partner_id)),
        )
        for s in states
    ]
    return ConversationConnection(
        edges=edges,
        page_info=page_info(edges, has_previous_page=position is not None, has_next_page=has_more),
    )


async def mark_read(ctx: Context, *, partner_id: str, up_to: str) -> Conversation:
    viewer_id = ctx.require_viewer()
    partner_id = await _existing_partner(partner_id)
    up_to = parse_id(up_to, field="upTo")
    message = visible_message(viewer_id, await find_message(ctx, up_to), field="upTo")
    if {message.sender_id, message.receiver_id} != {viewer_id, partner_id}:
        raise NotFound("message not found in this conversation", field="upTo")
    store = ctx.services.conversations
    await store.mark_read(viewer_id, partner_id, up_to, int(time.time() * 1000))  # a stale one changes nothing
    state = await store.state(viewer_id, partner_id)
    last = (await _last_messages(ctx, viewer_id, [partner_id])).get(partner_id)
    return _to_public(state, last)


async def set_typing(ctx: Context, *, partner_id: str, typing: bool) -> bool:
    viewer_id = ctx.require_viewer()
    partner_id = await _existing_partner(partner_id)
    await ctx.services.conversations.set_typing(viewer_id, partner_id, typing, int(time.time() * 1000))
    return True


async def conversation_events(ctx: Context) -> AsyncGenerator[ConversationEvent, None]:
    """Read receipts and typing notices that the viewer's partners send."""
    viewer_id = ctx.require_viewer()
    async with ctx.services.hub.subscribe(keys.conversation_events(viewer_id)) as subscription:
        async for raw in subscription:
            event = StoredEvent.decode(raw)
            yield ConversationEvent(
                type=ConversationEventType(event.type),
                partner_id=event.partner_id,  # type: ignore[arg-type]
                at=_at(event.at_ms),  # type: ignore[arg-type]
                up_to=event.up_to,  # type: ignore[arg-type]
            )
