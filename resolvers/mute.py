"""Use cases: muting a conversation (no Web Push from it) for a while or until unmuted."""

from __future__ import annotations

from datetime import datetime

from resolvers.access import member_conversation, now_ms
from resolvers.context import Context
from resolvers.conversations import ConversationView, views
from resolvers.errors import InvalidInput
from storage.mutes import Mute


async def mute_conversation(ctx: Context, *, conversation_id: str, until: datetime | None) -> ConversationView:
    viewer_id = ctx.require_viewer()
    found = await member_conversation(ctx, viewer_id, conversation_id, field="conversationId")
    until_ms = None
    if until is not None:
        until_ms = int(until.timestamp() * 1000)
        if until_ms <= now_ms():
            raise InvalidInput("until must be in the future", field="until")
    await ctx.runtime.mutes.mute(viewer_id, found.id, until_ms)
    return (await views(ctx, viewer_id, [found]))[0]


async def unmute_conversation(ctx: Context, *, conversation_id: str) -> ConversationView:
    viewer_id = ctx.require_viewer()
    found = await member_conversation(ctx, viewer_id, conversation_id, field="conversationId")
    await ctx.runtime.mutes.unmute(viewer_id, found.id)
    return (await views(ctx, viewer_id, [found]))[0]


async def viewer_mute(ctx: Context, *, conversation_id: str) -> Mute:
    """Whether the viewer has this conversation muted now, and until when."""
    return await ctx.runtime.mutes.of(ctx.require_viewer(), conversation_id, now_ms())
