"""Users as the schema shows them, their pages, sessions and presence events."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from resolvers.auth import Session
from resolvers.context import Context
from resolvers.cursors import Page
from resolvers.subscriptions import PresenceUpdate
from resolvers.users import UserView
from schema.node import Node
from schema.paging import PageInfo, edges_of, utc

ContextInfo = Info[Context, None]


@strawberry.type(
    description="A Chattergram account as every signed-in user sees it (the email address is never shown)."
)
class User(Node):
    id: strawberry.ID = strawberry.field(
        description="The user's unique ID (what `receiverId`, `partnerId` and `memberIds` take)."
    )
    username: str = strawberry.field(
        description="The name chosen at sign-up, as typed (3-32 characters of A-Z, a-z, 0-9, '_', '.', "
        "'-'); unique ignoring case."
    )
    online: bool = strawberry.field(
        description="True while at least one of the user's WebSocket connections is open, on any "
        "server. A crashed server's connections count as closed within 30 s (PRESENCE_TTL_SECONDS)."
    )
    last_seen_at: datetime | None = strawberry.field(
        description="When the user's last connection closed; null if they never connected over "
        "WebSocket. Written in batches, so it can trail `online` briefly."
    )
    created_at: datetime = strawberry.field(description="When the account was registered.")

    @classmethod
    def from_view(cls, view: UserView) -> User:
        user = view.user
        return cls(
            id=strawberry.ID(user.id), username=user.username, online=view.online,
            last_seen_at=user.last_seen_at, created_at=user.created_at,
        )


async def load_user(info: ContextInfo, user_id: str) -> User:
    view: UserView | None = await info.context.user_loader.load(user_id)
    if view is None:  # users are never deleted; a dangling id is a bug, not a client error
        raise LookupError(f"user {user_id} of a message is missing")
    return User.from_view(view)


@strawberry.type(description="A new session: what `register` and `login` return.")
class AuthPayload:
    token: str = strawberry.field(
        description="JWT access token: send it as 'Authorization: Bearer <token>' on HTTP and in "
        "the WebSocket connection_init payload. Keep it secret: it acts as you until it expires."
    )
    expires_at: datetime = strawberry.field(
        description="When the token stops working (7 days after issue by default, JWT_TTL_SECONDS); "
        "log in again to get a new one."
    )
    user: User = strawberry.field(description="The account the token belongs to.")

    @classmethod
    def from_session(cls, session: Session) -> AuthPayload:
        return cls(token=session.token, expires_at=session.expires_at, user=User.from_view(session.user))


@strawberry.type(description="A user in a page of `users`, with its cursor.")
class UserEdge:
    cursor: str = strawberry.field(description="Opaque position of this user: pass it as `after`.")
    node: User = strawberry.field(description="The user.")


@strawberry.type(description="A page of users, in sign-up order.")
class UserConnection:
    edges: list[UserEdge] = strawberry.field(description="The users of this page, oldest account first.")
    page_info: PageInfo = strawberry.field(description="Cursors and whether more users follow.")

    @classmethod
    def from_page(cls, page: Page[UserView]) -> UserConnection:
        return cls(edges=edges_of(page, lambda cursor, view: UserEdge(cursor=cursor, node=User.from_view(view))),
                   page_info=PageInfo.of(page))


@strawberry.type(description="A user went online or offline.")
class PresenceEvent:
    user: User = strawberry.field(description="The user, with `online` as of this event.")
    online: bool = strawberry.field(
        description="True: their first connection opened. False: their last one closed (or their "
        "server stopped answering for 30 s, PRESENCE_TTL_SECONDS)."
    )
    at: datetime = strawberry.field(description="When the change happened.")

    @classmethod
    def from_update(cls, update: PresenceUpdate) -> PresenceEvent:
        return cls(
            user=User.from_view(update.user), online=update.online,
            at=utc(update.at_ms),
        )
