"""Blocking users and reporting messages.

The root Query and Mutation types inherit these fields (schema.root)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from resolvers import safety
from schema.users import ContextInfo, User

USER_ID = strawberry.argument(description="The user's ID (NOT_FOUND if there is no such user; not your own).")


@strawberry.type(description="Reads of your safety settings.")
class SafetyQueries:
    @strawberry.field(
        description="The users you blocked, most recently blocked first (shown without presence: "
        "`online` false, `lastSeenAt` null)."
    )
    async def blocked_users(self, info: ContextInfo) -> list[User]:
        return [User.from_view(view) for view in await safety.blocked_users(info.context)]


@strawberry.type(description="Blocking users and reporting messages.")
class SafetyMutations:
    @strawberry.mutation(
        description="Block a user: they can no longer send you DIRECT messages or add you to groups "
        "(FORBIDDEN), you cannot write to them in DIRECT until you unblock them, and neither of you sees "
        "the other's presence (`online`, `lastSeenAt`, the `presence` subscription, `users(onlineOnly:)`). "
        "Groups you share keep working. True also if already blocked; yourself is BAD_USER_INPUT; at most "
        "1,000 blocked users by default (MAX_BLOCKED_USERS, BAD_USER_INPUT past it)."
    )
    async def block_user(self, info: ContextInfo, user_id: Annotated[strawberry.ID, USER_ID]) -> bool:
        return await safety.block_user(info.context, user_id=user_id)

    @strawberry.mutation(description="Unblock a user: everything a block stopped works again. True also if "
                         "they were not blocked.")
    async def unblock_user(self, info: ContextInfo, user_id: Annotated[strawberry.ID, USER_ID]) -> bool:
        return await safety.unblock_user(info.context, user_id=user_id)

    @strawberry.mutation(
        description="Report a message of a conversation you are a member of to the operators, who see it "
        "with its content as it is now (NOT_FOUND for any other message). Reporting it again replaces your "
        "reason. At most 10 reports per 10 minutes by default (RATE_LIMIT_REPORT_MESSAGE, RATE_LIMITED)."
    )
    async def report_message(
        self, info: ContextInfo,
        message_id: Annotated[strawberry.ID, strawberry.argument(description="The message's ID.")],
        reason: Annotated[str, strawberry.argument(
            description="Why it is reported: 1-1,000 characters after trimming (BAD_USER_INPUT otherwise).")],
    ) -> bool:
        return await safety.report_message(info.context, message_id=message_id, reason=reason)
