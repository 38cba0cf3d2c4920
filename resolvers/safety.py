"""Use cases: blocking users and reporting messages.

What a block does elsewhere lives where it applies: DIRECT writes (resolvers.access), adding
to groups (resolvers.groups), presence (resolvers.users, resolvers.subscriptions).
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

from resolvers.access import existing_user, parse_id, visible_message
from resolvers.context import Context
from resolvers.errors import InvalidInput
from resolvers.users import UserView, without_presence
from storage.blocks import BlockLimitReached
from storage.reports import StoredReport

MAX_REASON = 1000


async def _viewer_and_other(ctx: Context, user_id: str) -> tuple[str, str]:
    """The viewer and another existing user: yourself is BAD_USER_INPUT, an unknown id NOT_FOUND."""
    viewer_id = ctx.require_viewer()
    if parse_id(user_id, field="userId") == viewer_id:
        raise InvalidInput("you cannot block or unblock yourself", field="userId")
    return viewer_id, await existing_user(ctx, user_id, field="userId")


async def block_user(ctx: Context, *, user_id: str) -> bool:
    """Block `user_id`; true also when already blocked."""
    viewer_id, user_id = await _viewer_and_other(ctx, user_id)
    blocks = ctx.runtime.blocks
    try:
        await blocks.block(viewer_id, user_id, datetime.now(UTC))
    except BlockLimitReached:
        raise InvalidInput(f"you block {blocks.max_blocks} users already (MAX_BLOCKED_USERS): unblock some first",
                           field="userId") from None
    return True


async def unblock_user(ctx: Context, *, user_id: str) -> bool:
    """Unblock `user_id`; true also when they were not blocked."""
    viewer_id, user_id = await _viewer_and_other(ctx, user_id)
    await ctx.runtime.blocks.unblock(viewer_id, user_id)
    return True


async def blocked_users(ctx: Context) -> list[UserView]:
    """Whom the viewer blocks, most recently blocked first (never shown online to them)."""
    viewer_id = ctx.require_viewer()
    runtime = ctx.runtime
    ids = [block.blocked_id for block in await runtime.blocks.blocks_of(viewer_id)]
    found = await runtime.users.get_many(ids)
    return [without_presence(found[i]) for i in ids if i in found]


def normalise_reason(reason: str) -> str:
    reason = unicodedata.normalize("NFC", reason).strip()
    if not 1 <= len(reason) <= MAX_REASON:
        raise InvalidInput(f"reason must be 1-{MAX_REASON} characters after trimming", field="reason")
    if "\x00" in reason:
        raise InvalidInput("reason must not contain NUL characters", field="reason")
    return reason


async def report_message(ctx: Context, *, message_id: str, reason: str) -> bool:
    """Report a message of a conversation the viewer is a member of, for an operator to review
    (`chattergram reports`); its content is kept as it is now."""
    viewer_id = ctx.require_viewer()
    message_id = parse_id(message_id, field="messageId")
    reason = normalise_reason(reason)
    await ctx.rate_limit("report_message", viewer_id)
    message = await visible_message(ctx, viewer_id, await ctx.runtime.messages.find(message_id), field="messageId")
    await ctx.runtime.reports.add(StoredReport.of(message, reporter_id=viewer_id, reason=reason,
                                                  at=datetime.now(UTC)))
    return True
