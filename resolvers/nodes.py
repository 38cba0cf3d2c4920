"""Use case: `node(id:)`, any object by its globally unique ID, if the viewer may see it."""

from __future__ import annotations

from resolvers.access import parse_id
from resolvers.context import Context
from resolvers.conversations import ConversationView, views
from resolvers.users import UserView
from storage.records import StoredMessage

Found = ConversationView | StoredMessage | UserView


async def node(ctx: Context, *, node_id: str) -> Found | None:
    """A conversation the viewer is a member of, a message of one, or a user; None otherwise
    (whether the ID exists or not)."""
    viewer_id = ctx.require_viewer()
    node_id = parse_id(node_id, field="id")
    runtime = ctx.runtime
    conversation = await runtime.conversations.get(node_id)
    if conversation is not None:
        return (await views(ctx, viewer_id, [conversation]))[0] if conversation.member(viewer_id) else None
    message = await runtime.messages.find(node_id)
    if message is not None:
        found = await runtime.conversations.get(message.conversation_id)
        return message if found is not None and found.member(viewer_id) else None
    view: UserView | None = await ctx.user_loader.load(node_id)
    return view
