"""Use cases: the conversations list, read receipts, typing notices."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from resolvers.access import parse_id, visible_message
from resolvers.context import Context
from resolvers.cursors import Page, decode_cursor, encode_cursor
from resolvers.errors import InvalidInput, NotFound
from storage import keys
from storage.conversations import ConversationEvent, ConversationState
from storage.records import StoredMessage

DEFAULT_PAGE_SIZE = 20
MAX_PAGE = 100
CONVERSATION_CURSOR = "conv"


@dataclass(frozen=True, slots=True)
class ConversationView:
    """The viewer's state in a conversation and its newest message."""

    state: ConversationState
    last_message: StoredMessage | None


async def _views(ctx: Context, viewer_id: str, states: list[ConversationState]) -> list[ConversationView]:
    conversations = [keys.conversation_id(viewer_id, s.partner_id) for s in states]
    latest = await ctx.runtime.messages.latest(conversations)
    return [ConversationView(s, latest.get(c)) for s, c in zip(states, conversations, strict=True)]


async def _existing_partner(ctx: Context, partner_id: str) -> str:
    partner_id = parse_id(partner_id, field="partnerId")
    if not await ctx.runtime.users.exists(partner_id):
        raise NotFound("partner not found", field="partnerId")
    return partner_id


async def conversations(ctx: Context, *, first: int | None, after: str | None) -> Page[ConversationView]:
    viewer_id = ctx.require_viewer()
    first = DEFAULT_PAGE_SIZE if first is None else first  # an explicit null means the default
    if not 0 <= first <= MAX_PAGE:
        raise InvalidInput(f"first must be between 0 and {MAX_PAGE}", field="first")
    position = None
    if after is not None:
        ms, _, partner = decode_cursor(after, CONVERSATION_CURSOR, field="after").partition(":")
        if not ms.isdigit() or not partner:
            raise InvalidInput("Malformed cursor", field="after")
        position = (int(ms), partner)
    states, has_more = await ctx.runtime.conversations.page(viewer_id, first=first, after=position)
    return Page(
        items=await _views(ctx, viewer_id, states),
        cursors=[encode_cursor(CONVERSATION_CURSOR, f"{s.last_activity_ms}:{s.partner_id}") for s in states],
        has_previous_page=position is not None,
        has_next_page=has_more,
    )


async def mark_read(ctx: Context, *, partner_id: str, up_to: str) -> ConversationView:
    viewer_id = ctx.require_viewer()
    await ctx.rate_limit("mark_read", viewer_id)  # first: a refused call costs no lookup
    partner_id = await _existing_partner(ctx, partner_id)
    up_to = parse_id(up_to, field="upTo")
    message = visible_message(viewer_id, await ctx.runtime.messages.find(up_to), field="upTo")
    if {message.sender_id, message.receiver_id} != {viewer_id, partner_id}:
        raise NotFound("message not found in this conversation", field="upTo")
    store = ctx.runtime.conversations
    await store.mark_read(viewer_id, partner_id, up_to, int(time.time() * 1000))  # a stale one changes nothing
    return (await _views(ctx, viewer_id, [await store.state(viewer_id, partner_id)]))[0]


async def set_typing(ctx: Context, *, partner_id: str, typing: bool) -> bool:
    viewer_id = ctx.require_viewer()
    partner_id = await _existing_partner(ctx, partner_id)
    await ctx.runtime.conversations.set_typing(viewer_id, partner_id, typing, int(time.time() * 1000))
    return True


async def conversation_events(ctx: Context) -> AsyncGenerator[ConversationEvent, None]:
    """Read receipts and typing notices that the viewer's partners send."""
    viewer_id = ctx.require_viewer()
    async with ctx.runtime.hub.subscribe(keys.conversation_events(viewer_id)) as subscription:
        async for raw in subscription:
            yield ConversationEvent.decode(raw)
