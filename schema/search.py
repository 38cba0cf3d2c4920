"""Search results: user hits and message hits."""

from __future__ import annotations

from typing import Annotated

import strawberry

from resolvers.search import MessageFound, SearchOutcome
from schema.messages import Message, TranscriptWord
from schema.paging import PageInfo
from schema.users import User


@strawberry.type(description="A user whose username starts with the query's last word.")
class UserHit:
    user: User = strawberry.field(description="The matching user.")


@strawberry.type(
    description="One of your messages (typed text or voice transcript) matching the query, however old."
)
class MessageHit:
    message: Message = strawberry.field(description="The matching message.")
    snippet: str = strawberry.field(
        description="An excerpt of about 160 characters around the first match, HTML-escaped, with the "
        "matching words in <b>…</b> (… where it was cut)."
    )
    matches: list[TranscriptWord] = strawberry.field(
        description="The transcript words that match the query, with their timings (in spoken order; "
        "matched as the search does: ignoring case and punctuation, English stems, the last word as a "
        "prefix); empty for typed text."
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
    page_info: PageInfo = strawberry.field(
        description="Cursors of the first and last hit; `hasNextPage` when more follow (ask again with "
        "`after: endCursor`); `hasPreviousPage` when this page was asked for with `after`."
    )

    @classmethod
    def from_outcome(cls, outcome: SearchOutcome) -> SearchResults:
        hits: list[UserHit | MessageHit] = [
            MessageHit(message=Message.from_stored(hit.message), snippet=hit.snippet,
                       matches=[TranscriptWord(word=w.word, start=w.start, end=w.end, confidence=w.confidence)
                                for w in hit.matches])
            if isinstance(hit, MessageFound) else UserHit(user=User.from_view(hit))
            for hit in outcome.hits
        ]
        page_info = PageInfo(
            has_previous_page=outcome.has_previous_page, has_next_page=outcome.has_next_page,
            start_cursor=outcome.cursors[0] if outcome.cursors else None,
            end_cursor=outcome.cursors[-1] if outcome.cursors else None,
        )
        return cls(total=outcome.total, hits=hits, page_info=page_info)
