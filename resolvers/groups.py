"""Use cases: group conversations and their members, with the rules of roles.

MongoDB holds the authoritative copy: each change reads it, applies the rules, and writes it
back only if nobody changed it meanwhile (compare-and-set on `version`, retried a few times),
then mirrors it into Redis, where the send, read and typing scripts check membership.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Callable, Sequence

from resolvers.access import now_ms, parse_id
from resolvers.context import Context
from resolvers.conversations import ConversationView, views
from resolvers.errors import Conflict, Forbidden, InvalidInput, NotFound
from storage.ids import new_id
from storage.member_state import ConversationEvent
from storage.records import ROLES, StoredConversation, StoredMember

MAX_TITLE = 100
MANAGERS = ("OWNER", "ADMIN")
CHANGE_ATTEMPTS = 5


def normalise_title(title: str) -> str:
    title = unicodedata.normalize("NFC", title).strip()
    if not 1 <= len(title) <= MAX_TITLE:
        raise InvalidInput(f"title must be 1-{MAX_TITLE} characters after trimming", field="title")
    if any(unicodedata.category(c) in ("Cc", "Cf") and c not in "\u200d" for c in title):
        raise InvalidInput("title must not contain control characters", field="title")
    return title


async def _existing_users(ctx: Context, user_ids: Sequence[str], *, field: str) -> list[str]:
    """The ids, de-duplicated in order; NOT_FOUND naming `field` (and the ids) if any is unknown."""
    unique = list(dict.fromkeys(parse_id(u, field=field) for u in user_ids))
    found = await ctx.runtime.users.get_many(unique)
    unknown = [u for u in unique if u not in found]
    if unknown:
        raise NotFound("user not found", field=field, ids=unknown)
    return unique


async def _not_blocked_by(ctx: Context, viewer_id: str, user_ids: Sequence[str], *, field: str) -> None:
    """FORBIDDEN naming `field` (and the ids) when any of `user_ids` blocked the viewer."""
    blocking = await ctx.runtime.blocks.blocking_of_many(user_ids)
    refusing = [u for u in user_ids if viewer_id in blocking[u]]
    if refusing:
        raise Forbidden("a user who blocked you cannot be added to a group by you", field=field, ids=refusing)


def _check_size(ctx: Context, count: int, *, field: str) -> None:
    limit = ctx.runtime.max_group_members
    if count > limit:
        raise InvalidInput(f"a group has at most {limit} members (MAX_GROUP_MEMBERS)", field=field)


def _role_of(conversation: StoredConversation, user_id: str) -> str:
    member = conversation.member(user_id)
    assert member is not None
    return member.role


async def create_group(ctx: Context, *, title: str, member_ids: Sequence[str]) -> ConversationView:
    viewer_id = ctx.require_viewer()
    await ctx.rate_limit("send_message", viewer_id)
    title = normalise_title(title)
    others = [u for u in await _existing_users(ctx, member_ids, field="memberIds") if u != viewer_id]
    _check_size(ctx, 1 + len(others), field="memberIds")
    await _not_blocked_by(ctx, viewer_id, others, field="memberIds")
    at = now_ms()
    group = StoredConversation(
        id=new_id(), kind="GROUP", title=title, version=1, created_ms=at,
        members=(StoredMember(viewer_id, "OWNER", at), *(StoredMember(u, "MEMBER", at) for u in others)),
    )
    await ctx.runtime.conversations.insert(group)
    await ctx.runtime.conversation_lists.touch(group.member_ids(), group.id, at)
    await _announce(ctx, group, [ConversationEvent("MEMBER_ADDED", group.id, u, at, False, by_user_id=viewer_id)
                                 for u in others])
    return (await views(ctx, viewer_id, [group]))[0]


async def add_members(ctx: Context, *, conversation_id: str, user_ids: Sequence[str]) -> ConversationView:
    viewer_id = ctx.require_viewer()
    await ctx.rate_limit("send_message", viewer_id)
    wanted = await _existing_users(ctx, user_ids, field="userIds")
    await _not_blocked_by(ctx, viewer_id, [u for u in wanted if u != viewer_id], field="userIds")
    at = now_ms()

    def add(group: StoredConversation) -> StoredConversation:
        if _role_of(group, viewer_id) not in MANAGERS:
            raise Forbidden("only the group's owners and admins add members")
        new = [u for u in wanted if group.member(u) is None]
        if not new:
            return group
        _check_size(ctx, len(group.members) + len(new), field="userIds")
        return _next(group, members=(*group.members, *(StoredMember(u, "MEMBER", at) for u in new)))

    before, after = await _change(ctx, viewer_id, conversation_id, add)
    added = [m.user_id for m in after.members if before.member(m.user_id) is None]
    await ctx.runtime.conversation_lists.touch(added, after.id, at)
    await _announce(ctx, after, [ConversationEvent("MEMBER_ADDED", after.id, u, at, False, by_user_id=viewer_id)
                                 for u in added])
    return (await views(ctx, viewer_id, [after]))[0]


async def remove_member(ctx: Context, *, conversation_id: str, user_id: str) -> ConversationView:
    """Remove a member (owners and admins), or leave (anyone, for themselves)."""
    viewer_id = ctx.require_viewer()
    user_id = parse_id(user_id, field="userId")

    def remove(group: StoredConversation) -> StoredConversation:
        target = group.member(user_id)
        if target is None:
            raise NotFound("not a member of this group", field="userId")
        if user_id != viewer_id:
            actor = _role_of(group, viewer_id)
            if actor not in MANAGERS or (actor == "ADMIN" and target.role != "MEMBER"):
                raise Forbidden("owners remove anyone, admins remove members; anyone may leave")
        return _with_an_owner(_next(group, members=tuple(m for m in group.members if m.user_id != user_id)))

    _, after = await _change(ctx, viewer_id, conversation_id, remove)
    at = now_ms()
    await ctx.runtime.conversation_lists.remove(user_id, after.id)
    await _announce(ctx, after, [ConversationEvent("MEMBER_REMOVED", after.id, user_id, at, False,
                                                   by_user_id=viewer_id)], also=[user_id])
    return (await views(ctx, viewer_id, [after]))[0]


async def rename_group(ctx: Context, *, conversation_id: str, title: str) -> ConversationView:
    viewer_id = ctx.require_viewer()
    title = normalise_title(title)

    def rename(group: StoredConversation) -> StoredConversation:
        if _role_of(group, viewer_id) not in MANAGERS:
            raise Forbidden("only the group's owners and admins rename it")
        return group if group.title == title else _next(group, title=title)

    before, after = await _change(ctx, viewer_id, conversation_id, rename)
    if after is not before:
        await _announce(ctx, after, [ConversationEvent("RENAMED", after.id, viewer_id, now_ms(), False)])
    return (await views(ctx, viewer_id, [after]))[0]


async def set_member_role(ctx: Context, *, conversation_id: str, user_id: str, role: str) -> ConversationView:
    viewer_id = ctx.require_viewer()
    user_id = parse_id(user_id, field="userId")
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="role")

    def set_role(group: StoredConversation) -> StoredConversation:
        if _role_of(group, viewer_id) != "OWNER":
            raise Forbidden("only the group's owners change roles")
        target = group.member(user_id)
        if target is None:
            raise NotFound("not a member of this group", field="userId")
        if target.role == role:
            return group
        members = tuple(dataclasses.replace(m, role=role) if m.user_id == user_id else m for m in group.members)
        if not any(m.role == "OWNER" for m in members):
            raise InvalidInput("a group needs an owner: make another member OWNER first", field="role")
        return _next(group, members=members)

    _, after = await _change(ctx, viewer_id, conversation_id, set_role)
    return (await views(ctx, viewer_id, [after]))[0]


def _next(group: StoredConversation, **changes: object) -> StoredConversation:
    return dataclasses.replace(group, version=group.version + 1, **changes)  # type: ignore[arg-type]


def _with_an_owner(group: StoredConversation) -> StoredConversation:
    """When the last owner left: the longest-standing admin, else member, becomes owner; a
    group nobody is left in is archived (kept, never shown again)."""
    if not group.members:
        return dataclasses.replace(group, archived=True)
    if any(m.role == "OWNER" for m in group.members):
        return group
    by_seniority = sorted(group.members, key=lambda m: (m.role != "ADMIN", m.joined_ms, m.user_id))
    heir = by_seniority[0].user_id
    members = tuple(dataclasses.replace(m, role="OWNER") if m.user_id == heir else m for m in group.members)
    return dataclasses.replace(group, members=members)


async def _change(
    ctx: Context, viewer_id: str, conversation_id: str, change: Callable[[StoredConversation], StoredConversation]
) -> tuple[StoredConversation, StoredConversation]:
    """Apply `change` to MongoDB's current copy and store it if nobody changed it meanwhile.
    Returns (before, after); `after is before` when there was nothing to change."""
    conversation_id = parse_id(conversation_id, field="conversationId")
    store = ctx.runtime.conversations
    seen = await store.get(conversation_id)  # a DIRECT one may not have reached MongoDB yet
    if seen is not None and seen.kind != "GROUP" and seen.member(viewer_id) is not None:
        raise InvalidInput("only a group's members and title change", field="conversationId")
    for _ in range(CHANGE_ATTEMPTS):
        current = await store.fetch_authoritative(conversation_id)  # groups are made in MongoDB first
        if current is None or current.member(viewer_id) is None or current.kind != "GROUP":
            raise NotFound("conversation not found", field="conversationId")
        updated = change(current)
        if updated is current:
            await store.mirror(current)  # a no-op still repairs a mirror a crash left behind
            return current, current
        if await store.replace(updated, expected_version=current.version):
            return current, updated
    raise Conflict("the group changed while this change was made; try again", field="conversationId")


async def _announce(
    ctx: Context, group: StoredConversation, events: Sequence[ConversationEvent], *, also: Sequence[str] = ()
) -> None:
    """Tell the members (and `also`, e.g. who was removed) what changed."""
    await ctx.runtime.member_state.publish(events, [*group.member_ids(), *also])
