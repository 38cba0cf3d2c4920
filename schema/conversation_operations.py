"""Operations on conversations as entities: fetching one (or any node), and managing groups.

The root Query and Mutation types inherit these fields (schema.root)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from resolvers import conversations as conversing
from resolvers import groups, nodes
from resolvers.conversations import ConversationView
from resolvers.users import UserView
from schema.conversations import Conversation, MemberRole
from schema.inputs import CreateGroupInput
from schema.messages import Message
from schema.node import Node
from schema.users import ContextInfo, User

CONVERSATION_ID = strawberry.argument(description="The group's ID (NOT_FOUND unless you are a member).")


@strawberry.type(description="Reads of conversations and nodes.")
class ConversationQueries:
    @strawberry.field(
        description="Any object by its ID: a conversation you are a member of, a message of one, or a "
        "user. Null for anything else, whether it exists or not."
    )
    async def node(
        self, info: ContextInfo, id: Annotated[strawberry.ID, strawberry.argument(description="The object's ID.")]
    ) -> Node | None:
        found = await nodes.node(info.context, node_id=id)
        if isinstance(found, ConversationView):
            return Conversation.from_view(found)
        if isinstance(found, UserView):
            return User.from_view(found)
        return Message.from_stored(found) if found is not None else None

    @strawberry.field(description="One conversation you are a member of (NOT_FOUND otherwise).")
    async def conversation(
        self, info: ContextInfo,
        id: Annotated[strawberry.ID, strawberry.argument(description="The conversation's ID.")],
    ) -> Conversation:
        return Conversation.from_view(await conversing.conversation(info.context, conversation_id=id))


@strawberry.type(description="Changes to groups.")
class GroupMutations:
    @strawberry.mutation(
        description="Create a group with you as OWNER. Every member gets MEMBER_ADDED events. "
        "Rate-limited like sendMessage."
    )
    async def create_group(
        self, info: ContextInfo, input: Annotated[CreateGroupInput, strawberry.argument(description="The group.")]
    ) -> Conversation:
        view = await groups.create_group(info.context, title=input.title, member_ids=input.member_ids)
        return Conversation.from_view(view)

    @strawberry.mutation(
        description="Add members (owners and admins only, else FORBIDDEN). Members already in are "
        "ignored; unknown IDs are NOT_FOUND naming userIds; past MAX_GROUP_MEMBERS is BAD_USER_INPUT."
    )
    async def add_members(
        self, info: ContextInfo, conversation_id: Annotated[strawberry.ID, CONVERSATION_ID],
        user_ids: Annotated[list[strawberry.ID], strawberry.argument(description="The users to add.")],
    ) -> Conversation:
        view = await groups.add_members(info.context, conversation_id=conversation_id, user_ids=user_ids)
        return Conversation.from_view(view)

    @strawberry.mutation(
        description="Remove a member (owners remove anyone, admins only members; else FORBIDDEN), or "
        "leave with your own ID. The removed member stops receiving the group's events at once and "
        "can no longer read it. When the last owner leaves, the longest-standing admin (else member) "
        "becomes owner; a group nobody is left in is archived."
    )
    async def remove_member(
        self, info: ContextInfo, conversation_id: Annotated[strawberry.ID, CONVERSATION_ID],
        user_id: Annotated[strawberry.ID, strawberry.argument(description="The member to remove (yourself: leave).")],
    ) -> Conversation:
        view = await groups.remove_member(info.context, conversation_id=conversation_id, user_id=user_id)
        return Conversation.from_view(view)

    @strawberry.mutation(description="Rename a group (owners and admins only, else FORBIDDEN); members get RENAMED.")
    async def rename_group(
        self, info: ContextInfo, conversation_id: Annotated[strawberry.ID, CONVERSATION_ID],
        title: Annotated[str, strawberry.argument(description="1-100 characters after trimming.")],
    ) -> Conversation:
        view = await groups.rename_group(info.context, conversation_id=conversation_id, title=title)
        return Conversation.from_view(view)

    @strawberry.mutation(
        description="Change a member's role (owners only, else FORBIDDEN). A group always keeps an owner: "
        "make another member OWNER before stepping down."
    )
    async def set_member_role(
        self, info: ContextInfo, conversation_id: Annotated[strawberry.ID, CONVERSATION_ID],
        user_id: Annotated[strawberry.ID, strawberry.argument(description="The member.")],
        role: Annotated[MemberRole, strawberry.argument(description="The new role.")],
    ) -> Conversation:
        view = await groups.set_member_role(info.context, conversation_id=conversation_id, user_id=user_id,
                                            role=role.name)
        return Conversation.from_view(view)
