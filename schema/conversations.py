"""The viewer's conversations, their pages, and read and typing events."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum

import strawberry

from resolvers.conversations import ConversationView
from resolvers.cursors import Page
from schema.messages import Message
from schema.paging import PageInfo, at_ms, edges_of
from schema.users import ContextInfo, User, load_user
from storage.conversations import ConversationEvent as StoredConversationEvent


@strawberry.type(description="Your conversation with one partner, as only you see it.")
class Conversation:
    partner_id: strawberry.Private[str]
    last_message: Message | None = strawberry.field(
        description="The most recent message either of you sent; null if there is none."
    )
    unread_count: int = strawberry.field(description="Messages from the partner after your read marker.")
    last_read_at: datetime | None = strawberry.field(
        description="When you last moved your read marker (markRead); null if never."
    )
    partner_last_read_at: datetime | None = strawberry.field(
        description="When the partner last moved theirs (read receipts); null if never."
    )

    @classmethod
    def from_view(cls, view: ConversationView) -> Conversation:
        state = view.state
        return cls(
            partner_id=state.partner_id,
            last_message=Message.from_stored(view.last_message) if view.last_message else None,
            unread_count=state.unread,
            last_read_at=at_ms(state.read_at_ms),
            partner_last_read_at=at_ms(state.partner_read_at_ms),
        )

    @strawberry.field(description="The other user (yourself, for notes to self).")
    async def partner(self, info: ContextInfo) -> User:
        return await load_user(info, self.partner_id)


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


@strawberry.enum(description="What the partner did.")
class ConversationEventType(Enum):
    READ = strawberry.enum_value("READ", description="They moved their read marker forward, to `upTo`.")
    TYPING_STARTED = strawberry.enum_value(
        "TYPING_STARTED", description="They started typing (sent at most once per 2 s)."
    )
    TYPING_STOPPED = strawberry.enum_value(
        "TYPING_STOPPED", description="They stopped typing, or about 5 s passed since they last said they type."
    )


@strawberry.type(description="The partner read your messages up to `upTo`, or started/stopped typing.")
class ConversationEvent:
    type: ConversationEventType = strawberry.field(description="Read receipt, or typing started/stopped.")
    partner_id: strawberry.ID = strawberry.field(description="The ID of the partner who read or types.")
    at: datetime = strawberry.field(description="When it happened.")
    up_to: strawberry.ID | None = strawberry.field(
        description="READ only: the ID of the newest message the partner has read; null otherwise."
    )

    @classmethod
    def from_stored(cls, event: StoredConversationEvent) -> ConversationEvent:
        return cls(
            type=ConversationEventType(event.type),
            partner_id=strawberry.ID(event.partner_id),
            at=datetime.fromtimestamp(event.at_ms / 1000, UTC),
            up_to=strawberry.ID(event.up_to) if event.up_to else None,
        )
