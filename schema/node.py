"""The Relay `Node` interface: anything with a globally unique ID that `node(id:)` fetches."""

from __future__ import annotations

import strawberry


@strawberry.interface(
    description="An object with a globally unique ID: `node(id:)` fetches it again (User, Message, Conversation)."
)
class Node:
    id: strawberry.ID = strawberry.field(description="The object's globally unique ID.")
