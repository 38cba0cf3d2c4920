"""Slim search entries for messages that left the hot window, so search covers all history.

When the trim drops a message's JSON document from Redis, the same script writes a slim JSON
entry in its place (`keys.archived_message_entry`: same prefix and partition) holding only what
search reads: `conversation_id` (TAG), `text` (the typed text or transcript, TEXT) and
`sent_at_ms` (SORTABLE), plus `rev` so an older revision never overwrites a newer one. The
message index (`MessageHot`) covers both kinds of key, so one query ranks, counts and pages hot
and archived messages together, with the membership filter inside it. Audio, transcript words
and everything else stay in MongoDB, read only for the page of hits shown.
"""

from __future__ import annotations

import contextlib
import logging

import orjson
from redis.asyncio import Redis

from storage import keys
from storage.archive import ArchiveStore
from storage.records import StoredMessage

log = logging.getLogger(__name__)

# Write a message's slim entry unless its document is hot (search reads that) or the entry
# already holds this revision or a newer one. KEYS: the hot document, the entry (one slot).
# ARGV: the revision, the entry's JSON. Returns 1 written, 0 not.
_INDEX_IF_NEWER = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local rev = redis.call('JSON.GET', KEYS[2], '$.rev')
if rev and (cjson.decode(rev)[1] or -1) >= tonumber(ARGV[1]) then return 0 end
redis.call('JSON.SET', KEYS[2], '$', ARGV[2])
return 1
"""


def slim_entry(message: StoredMessage) -> bytes:
    """The entry's JSON (a tombstone's empty text matches nothing but keeps its revision)."""
    return orjson.dumps({"conversation_id": message.conversation_id, "text": message.text,
                         "sent_at_ms": message.sent_at_ms, "rev": message.rev})


class ArchiveIndex:
    """Keeps the slim entries of archived messages; the trim script writes them as messages age
    (storage/hot_window.py), this writes them after a change and after Redis lost its data."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._index_if_newer = redis.register_script(_INDEX_IF_NEWER)

    async def reindex(self, message: StoredMessage) -> bool:
        """Make an archived message's entry say what `message` (its new revision, an edit or a
        tombstone) says; a no-op if the message is hot or a newer revision is indexed. Call it
        after the archive holds that revision. Returns whether the entry was written."""
        return bool(await self._index_if_newer(
            keys=[keys.message_key(message.conversation_id, message.id),
                  keys.archived_message_entry(message.conversation_id, message.id)],
            args=[message.rev, slim_entry(message)],
        ))

    async def unindex(self, conversation_id: str, message_id: str) -> None:
        """Drop an archived message's entry (a message removed for good). For a delete that leaves
        a tombstone, `reindex` the tombstone instead: its revision stops a late older write."""
        await self.redis.delete(keys.archived_message_entry(conversation_id, message_id))

    async def rebuild(self, archive: ArchiveStore, *, before_id: str, batch_size: int = 500) -> int:
        """Write the entry of every archived message older than id `before_id` (the hot window's
        start) that Redis lacks, once per Redis dataset (`keys.archive_search_ready`); idempotent,
        so instances restoring at the same time agree. Returns how many were written."""
        if await self.redis.exists(keys.archive_search_ready()):
            return 0
        written = 0
        async with contextlib.aclosing(archive.since("", batch_size=batch_size)) as reading:
            async for messages in reading:
                older = [m for m in messages if m.id < before_id and m.text]
                if older:
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for m in older:  # one script per message: its two keys share a slot
                            await self._index_if_newer(
                                keys=[keys.message_key(m.conversation_id, m.id),
                                      keys.archived_message_entry(m.conversation_id, m.id)],
                                args=[m.rev, slim_entry(m)], client=pipe,
                            )
                        written += sum(int(r) for r in await pipe.execute())
                if messages[-1].id >= before_id:
                    break
        await self.redis.set(keys.archive_search_ready(), "1")
        if written:
            log.info("rebuilt the search entries of archived messages", extra={"written": written})
        return written
