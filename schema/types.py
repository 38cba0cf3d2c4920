"""Object types of the public schema (names fixed by ../shared/API.md)."""

from __future__ import annotations

from datetime import datetime

import strawberry


@strawberry.type(description="A Chattergram account as other users see it.")
class User:
    id: strawberry.ID
    username: str
    online: bool = strawberry.field(
        description="True while at least one of the user's WebSocket connections is open."
    )
    last_seen_at: datetime | None = strawberry.field(
        description="When the user's last connection closed (UTC); null if never connected."
    )
    created_at: datetime


@strawberry.type(description="The result of register and login.")
class AuthPayload:
    token: str = strawberry.field(
        description="JWT access token: send it as 'Authorization: Bearer <token>' on HTTP and in "
        "the WebSocket connection_init payload."
    )
    expires_at: datetime
    user: User


@strawberry.type(description="Relay-style page information.")
class PageInfo:
    has_previous_page: bool
    has_next_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class UserEdge:
    cursor: str
    node: User


@strawberry.type
class UserConnection:
    edges: list[UserEdge]
    page_info: PageInfo
