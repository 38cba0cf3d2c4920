"""Subscriptions: a source (subscribe to the viewer's channel) and the events it yields."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

from resolvers.context import Context
from resolvers.users import UserView
from storage import keys
from storage.presence import PresenceChange
from storage.records import MessageEventPayload


@dataclass(frozen=True, slots=True)
class PresenceUpdate:
    user: UserView
    online: bool
    at_ms: int


async def message_events(ctx: Context) -> AsyncGenerator[MessageEventPayload, None]:
    """Every message the viewer sends or receives, on any instance."""
    viewer_id = ctx.require_viewer()
    async with ctx.runtime.hub.subscribe(keys.user_events(viewer_id)) as subscription:
        async for raw in subscription:
            yield MessageEventPayload.decode(raw)


async def presence(ctx: Context) -> AsyncGenerator[PresenceUpdate, None]:
    """Users going online and offline. An event carries its user's profile, so N subscribers
    cost no Redis call per event; only an event without one is looked up. Users in a block with
    the viewer (either way) are left out (their blocks are cached per process)."""
    viewer_id = ctx.require_viewer()
    async with ctx.runtime.hub.subscribe(keys.PRESENCE_CHANNEL) as subscription:
        async for raw in subscription:
            change = PresenceChange.decode(raw)
            if await ctx.runtime.blocks.hidden_from(viewer_id, [change.user_id]):
                continue
            user = change.user
            if user is None:
                view = await ctx.user_loader.load(change.user_id)
                if view is None:
                    continue
                user = view.user
            yield PresenceUpdate(user=UserView(user, change.online), online=change.online, at_ms=change.at_ms)
