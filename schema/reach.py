"""Reaching people who are away: Web Push subscriptions and muted conversations.

The root Query and Mutation types inherit these fields (schema.root)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from resolvers import mute, push
from schema.conversations import Conversation
from schema.users import ContextInfo

CONVERSATION_ID = strawberry.argument(description="The conversation's ID (NOT_FOUND unless you are a member).")


@strawberry.input(description="A browser's PushSubscription, as `PushSubscription.toJSON()` gives it.")
class PushSubscriptionInput:
    endpoint: str = strawberry.field(description="The push service URL to POST to (https).")
    p256dh: str = strawberry.field(
        description="`keys.p256dh`: the browser's P-256 public key, base64url (65 bytes, uncompressed)."
    )
    auth: str = strawberry.field(description="`keys.auth`: the browser's authentication secret, base64url (16 bytes).")


@strawberry.type(description="Web Push set-up.")
class ReachQueries:
    @strawberry.field(
        description="The application server key (VAPID, base64url) to pass to `PushManager.subscribe` as "
        "`applicationServerKey`. FORBIDDEN when push is off on this server."
    )
    def vapid_public_key(self, info: ContextInfo) -> str:
        return push.vapid_public_key(info.context)


@strawberry.type(description="Web Push subscriptions and muting.")
class ReachMutations:
    @strawberry.mutation(
        description="Get a push notification for each new message (of a conversation you have not muted) "
        "while none of your WebSockets is connected. Registering the same endpoint again replaces it; "
        "each user keeps at most PUSH_MAX_SUBSCRIPTIONS_PER_USER (the oldest goes). A push service that "
        "answers 404/410 ends the subscription. BAD_USER_INPUT for a non-https endpoint or keys of the "
        "wrong form; FORBIDDEN when push is off on this server."
    )
    async def register_push_subscription(
        self, info: ContextInfo,
        input: Annotated[PushSubscriptionInput, strawberry.argument(description="The browser's subscription.")],
    ) -> bool:
        return await push.register_push_subscription(info.context, endpoint=input.endpoint, p256dh=input.p256dh,
                                                     auth=input.auth)

    @strawberry.mutation(description="Stop pushes to one of your subscriptions; false if you had none there.")
    async def unregister_push_subscription(
        self, info: ContextInfo,
        endpoint: Annotated[str, strawberry.argument(description="The subscription's endpoint.")],
    ) -> bool:
        return await push.unregister_push_subscription(info.context, endpoint=endpoint)

    @strawberry.mutation(
        description="Mute a conversation for yourself: no push notifications from it (messages and events "
        "still arrive). Muting again replaces `until`."
    )
    async def mute_conversation(
        self, info: ContextInfo, conversation_id: Annotated[strawberry.ID, CONVERSATION_ID],
        until: Annotated[datetime | None, strawberry.argument(
            description="When the mute ends by itself (in the future, else BAD_USER_INPUT); null: until unmuted."
        )] = None,
    ) -> Conversation:
        view = await mute.mute_conversation(info.context, conversation_id=conversation_id, until=until)
        return Conversation.from_view(view)

    @strawberry.mutation(description="End your mute of a conversation (a no-op if it is not muted).")
    async def unmute_conversation(
        self, info: ContextInfo, conversation_id: Annotated[strawberry.ID, CONVERSATION_ID],
    ) -> Conversation:
        return Conversation.from_view(await mute.unmute_conversation(info.context, conversation_id=conversation_id))
