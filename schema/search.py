"""Search results: user hits and message hits."""

from __future__ import annotations

from typing import Annotated

import strawberry

from resolvers.search import MessageFound, SearchOutcome
from schema.messages import Message
from schema.users import User


@strawberry.type(description="A user whose username starts with the query's last word.")
class UserHit:
    user: User = strawberry.field(description="The matching user.")


@strawberry.type(description="One of your messages (typed text or voice transcript) matching the query.")
class MessageHit:
    message: Message = strawberry.field(description="The matching message.")
    snippet: str = strawberry.field(
        description="An excerpt of about 160 characters around the first match, HTML-escaped, with the "
        "matching words in <b>…</b> (… where it was cut)."
    )


SearchHit = Annotated[
    UserHit | MessageHit,
    strawberry.union("SearchHit", description="A search result: a user or one of your messages."),
]


@strawberry.type(description="Search results: matching users first, then messages by relevance (newer first on ties).")
class SearchResults:
    total: int = strawberry.field(
        description="How many users and messages match in all, beyond this page too (counting only "
        "what you may see)."
    )
    hits: list[SearchHit] = strawberry.field(description="At most `first` hits: users, then messages.")

    @classmethod
    def from_outcome(cls, outcome: SearchOutcome) -> SearchResults:
        hits: list[UserHit | MessageHit] = [
            MessageHit(message=Message.from_stored(hit.message), snippet=hit.snippet)
            if isinstance(hit, MessageFound) else UserHit(user=User.from_view(hit))
            for hit in outcome.hits
        ]
        return cls(total=outcome.total, hits=hits)
