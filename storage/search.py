"""Full-text search in RediSearch over the indexes that the redis-om models declare
(`MessageHot.text` as TEXT with English stemming, `conversation_id` as TAG,
`UserHot.username_lower` as TAG). The message index covers the hot documents and the slim
entries of archived messages alike (storage/archive_index.py), so one query searches all
history. Queries go through redis-py's FT.SEARCH because redis-om's
query builder has no prefix terms, scores or highlighting.

Callers pass terms that are already tokenised to letters and digits (see
`resolvers.search`); `escape` is a second guard so no query syntax can get through.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.commands.search.query import Query

from storage import keys
from storage.archive import ArchiveStore
from storage.hot import MessageHot, UserHot
from storage.records import StoredMessage

MARK_OPEN, MARK_CLOSE = "\ue000", "\ue001"  # private-use characters around highlighted words
_SPECIAL = re.compile(r"([^0-9A-Za-z\u0080-\uffff])")


def escape(value: str) -> str:
    """Backslash-escape everything but letters and digits (RediSearch query syntax)."""
    return _SPECIAL.sub(r"\\\1", value)


@dataclass(frozen=True, slots=True)
class MessageMatch:
    key: str  # the message document's Redis key, or its slim entry's once archived
    score: float
    sent_at_ms: int
    marked_text: str  # the whole text with matches between MARK_OPEN and MARK_CLOSE


class SearchIndex:
    """Queries over the RediSearch indexes of messages and usernames."""

    def __init__(self, redis: Redis, archive: ArchiveStore) -> None:
        self.redis = redis
        self.archive = archive

    async def messages(
        self, *, conversation_ids: Sequence[str], terms: list[str], prefix_last: bool, limit: int, offset: int = 0
    ) -> tuple[int, list[MessageMatch]]:
        """Messages of these conversations (the viewer's, checked by the caller) matching every
        term, best first.

        The conversation filter is part of the index query, so `total` never counts (and
        timing never depends on) anyone else's messages.
        """
        if not conversation_ids:
            return 0, []
        words = [escape(t) for t in terms]
        if prefix_last and len(terms[-1]) >= 2:
            words[-1] += "*"
        scope = "@conversation_id:{" + " | ".join(escape(c) for c in conversation_ids) + "}"
        query = (
            Query(f"{scope} @text_fts:({' '.join(words)})")
            .with_scores()
            .scorer("BM25")
            .paging(offset, limit)
            .highlight(fields=["text_fts"], tags=[MARK_OPEN, MARK_CLOSE])
            .return_fields("text_fts", "sent_at_ms")
            .dialect(2)
        )
        index = self.redis.ft(MessageHot._meta.index_name)
        result = await index.search(query)  # type: ignore[misc]  # types-redis (4.6) types ft() as sync; async since redis 5
        matches = [
            MessageMatch(key=doc.id, score=float(doc.score), sent_at_ms=int(doc.sent_at_ms),
                         marked_text=getattr(doc, "text_fts", ""))
            for doc in result.docs
        ]
        matches.sort(key=lambda m: (-m.score, -m.sent_at_ms))  # relevance, then newer first
        return int(result.total), matches

    async def archived(self, matches: Sequence[MessageMatch]) -> dict[str, StoredMessage]:
        """The archived messages of these matches (slim entries, or hot documents trimmed since
        the query), by id, from MongoDB in one query."""
        return await self.archive.get_many([keys.message_id_of_key(m.key) for m in matches])

    async def usernames(self, *, prefix: str, limit: int, offset: int = 0) -> tuple[int, list[str]]:
        """Ids of users whose username starts with `prefix` (ignoring case)."""
        query = Query(f"@username_lower:{{{escape(prefix.lower())}*}}").paging(offset, limit).no_content().dialect(2)
        index = self.redis.ft(UserHot._meta.index_name)
        result = await index.search(query)  # type: ignore[misc]  # types-redis (4.6) types ft() as sync; async since redis 5
        prefix_len = len(UserHot.make_primary_key(""))
        return int(result.total), [doc.id[prefix_len:] for doc in result.docs]
