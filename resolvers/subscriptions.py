"""Subscriptions: a source (subscribe to the viewer's channel) and a mapping per event."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import UTC, datetime

from resolvers.context import Context
from resolvers.messages import to_public_message
from schema.types import MessageEvent, MessageEventType, PresenceEvent
from storage import keys
from storage.messages import MessageEventPayload
from storage.presence import PresenceChange


async def message_events(ctx: Context) -> AsyncGenerator[MessageEvent, None]:
    """Every message the viewer sends or receives, on any instance."""
    viewer_id = ctx.require_viewer()
    async with ctx.services.hub.subscribe(keys.user_events(viewer_id)) as subscription:
        async for raw in subscription:
            event = MessageEventPayload.decode(raw)
            yield MessageEvent(type=MessageEventType(event.type), message=to_public_message(event.message))


async def presence(ctx: Context) -> AsyncGenerator[PresenceEvent, None]:
    """Users going online and offline."""
    ctx.require_viewer()
    async with ctx.services.hub.subscribe(keys.PRESENCE_CHANNEL) as subscription:
        async for raw in subscription:
            change = PresenceChange.decode(raw)
            user = await ctx.user_loader.load(change.user_id)
            if user is None:
                continue
            user.online = change.online
            yield PresenceEvent(
                user=user, online=change.online, at=datetime.fromtimestamp(change.at_ms / 1000, UTC)
            )
