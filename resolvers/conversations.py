"""Use cases: the conversation list, one conversation, read receipts, typing notices."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

from resolvers.access import (
    addressed_conversation,
    member_conversation,
    now_ms,
    parse_id,
    visible_message,
)
from resolvers.context import Context
from resolvers.cursors import Page, decode_cursor, encode_cursor
from resolvers.errors import InvalidInput, NotFound
from storage import keys
from storage.member_state import NOT_A_MEMBER, ConversationEvent, MemberState
from storage.records import StoredConversation, StoredMessage

DEFAULT_PAGE_SIZE = 20
MAX_PAGE = 100
CONVERSATION_CURSOR = "conv"


@dataclass(frozen=True, slots=True)
class ConversationView:
    """A conversation as one member sees it: their state in it and its newest message."""

    conversation: StoredConversation
    viewer_id: str
    state: MemberState
    last_message: StoredMessage | None


async def views(ctx: Context, viewer_id: str, conversations: Sequence[StoredConversation]) -> list[ConversationView]:
    ids = [c.id for c in conversations]
    runtime = ctx.runtime
    states = await runtime.member_state.states(viewer_id, ids)
    latest = await runtime.messages.latest(ids)
    return [ConversationView(c, viewer_id, s, latest.get(c.id)) for c, s in zip(conversations, states, strict=True)]


async def conversations(ctx: Context, *, first: int | None, after: str | None) -> Page[ConversationView]:
    """The viewer's conversations, most recent activity first."""
    viewer_id = ctx.require_viewer()
    first = DEFAULT_PAGE_SIZE if first is None else first  # an explicit null means the default
    if not 0 <= first <= MAX_PAGE:
        raise InvalidInput(f"first must be between 0 and {MAX_PAGE}", field="first")
    position = None
    if after is not None:
        ms, _, conversation_id = decode_cursor(after, CONVERSATION_CURSOR, field="after").partition(":")
        if not ms.isdigit() or not conversation_id:
            raise InvalidInput("Malformed cursor", field="after")
        position = (int(ms), conversation_id)
    lists = ctx.runtime.conversation_lists
    ids, has_more = await lists.page(viewer_id, first=first, after=position)
    found = await ctx.runtime.conversations.get_many(ids)
    mine = [c for c in found.values() if c is not None and c.member(viewer_id) is not None]
    for stale in set(ids) - {c.id for c in mine}:  # left or removed since: the list is only an index
        await lists.remove(viewer_id, stale)
    scores = dict(zip(ids, await lists.activity(viewer_id, ids), strict=True))
    page = await views(ctx, viewer_id, mine)
    return Page(
        items=page,
        cursors=[encode_cursor(CONVERSATION_CURSOR, f"{scores[v.conversation.id]}:{v.conversation.id}") for v in page],
        has_previous_page=position is not None,
        has_next_page=has_more,
    )


async def conversation(ctx: Context, *, conversation_id: str) -> ConversationView:
    viewer_id = ctx.require_viewer()
    found = await member_conversation(ctx, viewer_id, conversation_id, field="id")
    return (await views(ctx, viewer_id, [found]))[0]


async def mark_read(
    ctx: Context, *, conversation_id: str | None, partner_id: str | None, up_to: str
) -> ConversationView:
    viewer_id = ctx.require_viewer()
    await ctx.rate_limit("mark_read", viewer_id)  # first: a refused call costs no lookup
    found = await addressed_conversation(ctx, viewer_id, conversation_id=conversation_id, partner_id=partner_id,
                                         create=False)
    up_to = parse_id(up_to, field="upTo")
    message = await visible_message(ctx, viewer_id, await ctx.runtime.messages.find(up_to), field="upTo")
    if found is None or message.conversation_id != found.id:
        raise NotFound("message not found in this conversation", field="upTo")
    moved = await ctx.runtime.member_state.mark_read(found.id, viewer_id, up_to, direct=found.kind == "DIRECT",
                                                     now_ms=now_ms())  # a stale one changes nothing
    if moved == NOT_A_MEMBER:  # removed a moment ago
        raise NotFound("conversation not found", field="conversationId")
    return (await views(ctx, viewer_id, [found]))[0]


async def set_typing(ctx: Context, *, conversation_id: str | None, partner_id: str | None, typing: bool) -> bool:
    viewer_id = ctx.require_viewer()
    found = await addressed_conversation(ctx, viewer_id, conversation_id=conversation_id, partner_id=partner_id,
                                         create=True)
    assert found is not None
    if not await ctx.runtime.member_state.set_typing(found.id, viewer_id, typing, direct=found.kind == "DIRECT",
                                                     now_ms=now_ms()):
        raise NotFound("conversation not found", field="conversationId")
    return True


async def conversation_events(ctx: Context) -> AsyncGenerator[ConversationEvent, None]:
    """Reads, typing and membership changes in the viewer's conversations (only those the
    viewer is a member of when the event is published)."""
    viewer_id = ctx.require_viewer()
    async with ctx.runtime.hub.subscribe(keys.conversation_events(viewer_id)) as subscription:
        async for raw in subscription:
            yield ConversationEvent.decode(raw)
