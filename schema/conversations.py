"""Conversations (DIRECT and GROUP), their members, pages and events."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from resolvers import mute
from resolvers.conversations import ConversationView
from resolvers.cursors import Page
from schema.messages import Message
from schema.node import Node
from schema.paging import PageInfo, at_ms, edges_of, utc
from schema.users import ContextInfo, User, load_user
from storage.member_state import ConversationEvent as StoredConversationEvent
from storage.records import StoredMember


@strawberry.enum(description="What kind of conversation it is.")
class ConversationKind(Enum):
    DIRECT = strawberry.enum_value(
        "DIRECT", description="Between two users (one, for notes to yourself); made by the first message."
    )
    GROUP = strawberry.enum_value("GROUP", description="A titled group, made by createGroup, with roles.")


@strawberry.enum(description="What a member of a group may do (members of a DIRECT conversation are all MEMBER).")
class MemberRole(Enum):
    OWNER = strawberry.enum_value(
        "OWNER", description="Everything an admin may, plus changing roles. When the last owner leaves, "
        "the longest-standing admin (else member) becomes owner."
    )
    ADMIN = strawberry.enum_value("ADMIN", description="Adds members, removes members (not admins or owners), renames.")
    MEMBER = strawberry.enum_value("MEMBER", description="Reads and writes; may leave.")


@strawberry.type(description="A member of a conversation.")
class ConversationMember:
    user_id: strawberry.Private[str]
    role: MemberRole = strawberry.field(description="What the member may do.")
    joined_at: datetime = strawberry.field(description="When the member joined (or the conversation began).")
    last_read_at: datetime | None = strawberry.field(
        description="When the member last moved their read marker (markRead); null if never."
    )

    @strawberry.field(description="The member.")
    async def user(self, info: ContextInfo) -> User:
        return await load_user(info, self.user_id)


@strawberry.type(description="A conversation you are a member of, as you see it.")
class Conversation(Node):
    id: strawberry.ID = strawberry.field(description="The conversation's unique ID (what `conversationId` takes).")
    kind: ConversationKind = strawberry.field(description="DIRECT or GROUP.")
    title: str | None = strawberry.field(description="GROUP only: its title (1-100 characters); null for DIRECT.")
    member_count: int = strawberry.field(description="How many members it has now.")
    last_message: Message | None = strawberry.field(
        description="The most recent message; null if there is none."
    )
    unread_count: int = strawberry.field(
        description="Messages from the other members after your read marker (within the recent window, "
        "HOT_WINDOW_DAYS)."
    )
    last_read_at: datetime | None = strawberry.field(
        description="When you last moved your read marker (markRead); null if never."
    )
    partner_last_read_at: datetime | None = strawberry.field(
        description="DIRECT only: when the partner last moved theirs (read receipts); null if never or in a group."
    )
    member_list: strawberry.Private[tuple[StoredMember, ...]]
    read_times_ms: strawberry.Private[dict[str, int]]
    partner_id: strawberry.Private[str | None]

    @classmethod
    def from_view(cls, view: ConversationView) -> Conversation:
        conversation, state = view.conversation, view.state
        partner_id = conversation.partner_of(view.viewer_id)
        return cls(
            id=strawberry.ID(conversation.id),
            kind=ConversationKind(conversation.kind),
            title=conversation.title,
            member_count=len(conversation.members),
            last_message=Message.from_stored(view.last_message) if view.last_message else None,
            unread_count=state.unread,
            last_read_at=at_ms(state.read_times_ms.get(view.viewer_id)),
            partner_last_read_at=at_ms(state.read_times_ms.get(partner_id)) if partner_id else None,
            member_list=conversation.members,
            read_times_ms=state.read_times_ms,
            partner_id=partner_id,
        )

    @strawberry.field(description="The current members, longest-standing first.")
    def members(self) -> list[ConversationMember]:
        return [
            ConversationMember(user_id=m.user_id, role=MemberRole(m.role), joined_at=utc(m.joined_ms),
                               last_read_at=at_ms(self.read_times_ms.get(m.user_id)))
            for m in self.member_list
        ]

    @strawberry.field(description="DIRECT only: the other member (yourself, for notes to self); null in a group.")
    async def partner(self, info: ContextInfo) -> User | None:
        return await load_user(info, self.partner_id) if self.partner_id else None

    @strawberry.field(description="Whether you muted it (muteConversation) and the mute has not ended.")
    async def muted(self, info: ContextInfo) -> bool:
        return (await mute.viewer_mute(info.context, conversation_id=self.id)).muted

    @strawberry.field(description="When your mute ends by itself; null when not muted or muted until unmuted.")
    async def muted_until(self, info: ContextInfo) -> datetime | None:
        until_ms = (await mute.viewer_mute(info.context, conversation_id=self.id)).until_ms
        return at_ms(until_ms)


@strawberry.type(description="A conversation in a page of `conversations`, with its cursor.")
class ConversationEdge:
    cursor: str = strawberry.field(description="Opaque position of this conversation: pass it as `after`.")
    node: Conversation = strawberry.field(description="The conversation.")


@strawberry.type(description="A page of your conversations, most recent activity first.")
class ConversationConnection:
    edges: list[ConversationEdge] = strawberry.field(
        description="The conversations of this page, most recent activity first."
    )
    page_info: PageInfo = strawberry.field(description="Cursors and whether more conversations follow.")

    @classmethod
    def from_page(cls, page: Page[ConversationView]) -> ConversationConnection:
        edges = edges_of(page, lambda cursor, view: ConversationEdge(cursor=cursor, node=Conversation.from_view(view)))
        return cls(edges=edges, page_info=PageInfo.of(page))


@strawberry.enum(description="What happened in the conversation.")
class ConversationEventType(Enum):
    READ = strawberry.enum_value("READ", description="`userId` moved their read marker forward, to `upTo`.")
    TYPING_STARTED = strawberry.enum_value(
        "TYPING_STARTED", description="`userId` started typing (sent at most once per 2 s)."
    )
    TYPING_STOPPED = strawberry.enum_value(
        "TYPING_STOPPED", description="`userId` stopped typing, or about 5 s passed since they last said they type."
    )
    MEMBER_ADDED = strawberry.enum_value("MEMBER_ADDED", description="`userId` was added to the group (by `byUserId`).")
    MEMBER_REMOVED = strawberry.enum_value(
        "MEMBER_REMOVED", description="`userId` left the group or was removed (by `byUserId`); if that is "
        "you, no further events of this conversation reach you."
    )
    RENAMED = strawberry.enum_value("RENAMED", description="`userId` renamed the group: fetch its new title.")


@strawberry.type(
    description="Something another member did in one of your conversations: a read receipt, typing, or a "
    "change of members or title."
)
class ConversationEvent:
    type: ConversationEventType = strawberry.field(description="What happened.")
    conversation_id: strawberry.ID = strawberry.field(description="The conversation it happened in.")
    user_id: strawberry.ID = strawberry.field(
        description="Who read or types; who was added or removed; who renamed the group."
    )
    partner_id: strawberry.ID | None = strawberry.field(
        description="DIRECT conversations: the partner who read or types (the same as `userId`); null in groups."
    )
    by_user_id: strawberry.ID | None = strawberry.field(
        description="MEMBER_ADDED / MEMBER_REMOVED: who added or removed them (themselves, when they left)."
    )
    at: datetime = strawberry.field(description="When it happened.")
    up_to: strawberry.ID | None = strawberry.field(
        description="READ only: the ID of the newest message they have read; null otherwise."
    )

    @classmethod
    def from_stored(cls, event: StoredConversationEvent) -> ConversationEvent:
        return cls(
            type=ConversationEventType(event.type),
            conversation_id=strawberry.ID(event.conversation_id),
            user_id=strawberry.ID(event.user_id),
            partner_id=strawberry.ID(event.user_id) if event.direct else None,
            by_user_id=strawberry.ID(event.by_user_id) if event.by_user_id else None,
            at=utc(event.at_ms),
            up_to=strawberry.ID(event.up_to) if event.up_to else None,
        )
