"""Authorisation in one place: membership decides who sees a conversation and its messages.

Whatever is not the viewer's to see is NOT_FOUND, whether it exists or not, so ids of other
people's conversations and messages reveal nothing.
"""

from __future__ import annotations

import time

from resolvers.context import Context
from resolvers.errors import Forbidden, InvalidInput, NotFound
from storage.ids import direct_conversation_id, is_valid_id
from storage.records import StoredConversation, StoredMessage


def parse_id(value: str, *, field: str) -> str:
    """A well-formed id, or BAD_USER_INPUT naming `field`."""
    if not isinstance(value, str) or not is_valid_id(value):
        raise InvalidInput(f"{field} is not a valid id", field=field)
    return value


def now_ms() -> int:
    return int(time.time() * 1000)


async def member_conversation(ctx: Context, viewer_id: str, conversation_id: str, *, field: str) -> StoredConversation:
    """The conversation if the viewer is a member now; NOT_FOUND naming `field` otherwise."""
    conversation = await ctx.runtime.conversations.get(parse_id(conversation_id, field=field))
    if conversation is None or conversation.member(viewer_id) is None:
        raise NotFound("conversation not found", field=field)
    return conversation


async def existing_user(ctx: Context, user_id: str, *, field: str) -> str:
    user_id = parse_id(user_id, field=field)
    if not await ctx.runtime.users.exists(user_id):
        raise NotFound("user not found", field=field)
    return user_id


def exactly_one(conversation_id: str | None, partner_id: str | None, *, other: str = "partnerId") -> None:
    if (conversation_id is None) == (partner_id is None):
        raise InvalidInput(f"give exactly one of conversationId and {other}", field="conversationId")


async def addressed_conversation(
    ctx: Context, viewer_id: str, *, conversation_id: str | None, partner_id: str | None, create: bool,
    partner_field: str = "partnerId",
) -> StoredConversation | None:
    """The conversation named by `conversationId`, or the DIRECT one with `partnerId` (made if
    `create`, else None while it does not exist yet). Exactly one of the two ids."""
    exactly_one(conversation_id, partner_id, other=partner_field)
    if conversation_id is not None:
        conversation = await member_conversation(ctx, viewer_id, conversation_id, field="conversationId")
        if create:
            await not_blocked(ctx, viewer_id, conversation.partner_of(viewer_id), field="conversationId")
        return conversation
    assert partner_id is not None
    partner_id = parse_id(partner_id, field=partner_field)
    store = ctx.runtime.conversations
    known = await store.known_direct(direct_conversation_id(viewer_id, partner_id))
    if known is not None and known.member(viewer_id) is not None:
        if create:
            await not_blocked(ctx, viewer_id, partner_id, field=partner_field)
        return known  # the partner exists: the conversation names them (no round-trip on the hot path)
    partner_id = await existing_user(ctx, partner_id, field=partner_field)
    if create:
        await not_blocked(ctx, viewer_id, partner_id, field=partner_field)
        if known is None:  # Redis was just found without it: no second read
            return await store.make_direct(viewer_id, partner_id, now_ms())
        return await store.ensure_direct(viewer_id, partner_id, now_ms())
    return await store.get(direct_conversation_id(viewer_id, partner_id))


async def not_blocked(ctx: Context, viewer_id: str, partner_id: str | None, *, field: str) -> None:
    """FORBIDDEN naming `field` when the viewer and their DIRECT partner (None: a group) blocked
    one another, either way; answered from the process's cache on the send path."""
    if partner_id is None or partner_id == viewer_id:
        return
    blocking = await ctx.runtime.blocks.blocking_of_many([viewer_id, partner_id])
    if partner_id in blocking[viewer_id]:
        raise Forbidden("you blocked this user: unblock them to write to them", field=field)
    if viewer_id in blocking[partner_id]:
        raise Forbidden("this user does not accept your messages", field=field)


async def visible_message(
    ctx: Context, viewer_id: str, message: StoredMessage | None, *, field: str = "id"
) -> StoredMessage:
    """The message if the viewer is a member of its conversation now; NOT_FOUND otherwise."""
    if message is not None:
        conversation = await ctx.runtime.conversations.get(message.conversation_id)
        if conversation is not None and conversation.member(viewer_id) is not None:
            return message
    raise NotFound("message not found", field=field)
