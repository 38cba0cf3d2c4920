"""One revision-checked way to change a stored message, wherever it lives.

Every change after the send (a transcript landing, a retry, an edit, a delete, a reaction) is
decided on the state read and written only if the message still has that state's revision:
in the hot window by one Lua script over the message's partition (compare `rev`, set the
document, enqueue it for MongoDB, publish to every member), in the archive by a replace
filtered on `_id` and `rev`. A change that lost a race is decided again on the new state, so
concurrent changes end the same in Redis, MongoDB, the search index and the events.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis

from storage import keys
from storage.archive import ArchiveStore
from storage.archive_index import ArchiveIndex
from storage.errors import StorageError
from storage.hot_copy import HotCopies
from storage.records import MessageEventPayload, StoredMessage
from storage.slots import partition_of

log = logging.getLogger(__name__)

APPLIED, CHANGED_MEANWHILE, NOT_HOT = 1, 0, -1
MAX_ATTEMPTS = 20  # each lost race means another change landed: this many in a row is a storm
_USER_CHANNEL = keys.user_events("")

# Replace a hot message's document if its revision is still the one the change was decided on.
# KEYS: document, members, and its partition's outbox and transcription queue (one slot).
# ARGV: revision expected, document JSON, id, conversation, channel prefix, '1' to queue a
#       transcription job, event. Returns 1 applied, 0 changed meanwhile, -1 not in Redis.
_CHANGE = """
local rev = redis.call('JSON.GET', KEYS[1], '$.rev')
if not rev then return -1 end
if (cjson.decode(rev)[1] or 0) ~= tonumber(ARGV[1]) then return 0 end
redis.call('JSON.SET', KEYS[1], '$', ARGV[2])
redis.call('XADD', KEYS[3], '*', 'id', ARGV[3], 'conversation', ARGV[4])
if ARGV[6] == '1' then redis.call('XADD', KEYS[4], '*', 'id', ARGV[3], 'conversation', ARGV[4], 'attempt', '1') end
for _, member in ipairs(redis.call('HKEYS', KEYS[2])) do redis.call('PUBLISH', ARGV[5] .. member, ARGV[7]) end
return 1
"""


# Publish an archived message's event unless a newer revision's went out first (its MongoDB
# write and this are two steps, so two changes may publish out of order).
# KEYS: the message's published revision, its conversation's members (one slot).
# ARGV: revision, event, channel prefix, seconds to remember the revision.
_PUBLISH_IF_NEWER = """
if tonumber(redis.call('GET', KEYS[1]) or '-1') >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[4])
for _, member in ipairs(redis.call('HKEYS', KEYS[2])) do redis.call('PUBLISH', ARGV[3] .. member, ARGV[2]) end
return 1
"""
PUBLISHED_REVISION_TTL_SECONDS = 3600  # far longer than two writes of one message can be apart


@dataclass(frozen=True, slots=True)
class Change:
    """What a decision makes of a message: its new state (`rev` is bumped on writing) and the
    event every member receives."""

    message: StoredMessage
    event: str = "UPDATED"  # or DELETED (the message is the tombstone)
    queue_transcription: bool = False


Decide = Callable[[StoredMessage], Change | None]  # None: nothing to change (idempotent)
Find = Callable[[str, str], Awaitable[StoredMessage | None]]


class MessageKeptChanging(StorageError):
    """Every attempt lost its race against another change of the same message."""


class MessageChanges:
    def __init__(self, redis: Redis, archive: ArchiveStore, archive_index: ArchiveIndex, hot_copies: HotCopies,
                 find: Find) -> None:
        self.redis = redis
        self.archive = archive
        self.archive_index = archive_index
        self._find = find
        self._change = redis.register_script(_CHANGE)
        self._publish_if_newer = redis.register_script(_PUBLISH_IF_NEWER)
        self.hot_copies = hot_copies  # the hot window's: a restore and a change repair the same copies

    async def change(self, message_id: str, conversation_id: str, decide: Decide) -> StoredMessage | None:
        """Read the message, `decide` what it becomes, write that if nothing changed it meanwhile,
        else decide again on the new state. Returns the message as it is afterwards (None: it
        does not exist). `decide` may raise to refuse."""
        for _ in range(MAX_ATTEMPTS):
            current = await self._find(message_id, conversation_id)
            if current is None:
                return None
            change = decide(current)
            if change is None:
                return current
            changed = dataclasses.replace(change.message, rev=current.rev + 1)
            if await self.apply(current.rev, changed, event=change.event,
                                queue_transcription=change.queue_transcription):
                return changed
            log.info("message changed meanwhile: deciding again", extra={"message_id": message_id})
        raise MessageKeptChanging(message_id)

    async def apply(self, expected_rev: int, message: StoredMessage, *, event: str = "UPDATED",
                    queue_transcription: bool = False) -> bool:
        """Write `message` (its `rev` already bumped) if the stored one still has `expected_rev`,
        and publish `event` to every member. False when it changed meanwhile or does not exist."""
        document = message.to_document()
        payload = MessageEventPayload(event, message).encode(document)
        conversation = message.conversation_id
        partition = partition_of(conversation)
        status = int(await self._change(
            keys=[keys.message_key(conversation, message.id), keys.conversation_members(conversation),
                  keys.outbox_stream(partition), keys.transcription_stream(partition)],
            args=[expected_rev, orjson.dumps(document), message.id, conversation, _USER_CHANNEL,
                  "1" if queue_transcription else "0", payload],
        ))
        if status != NOT_HOT:
            return status == APPLIED
        # Trimming removes a message from Redis only once MongoDB has its revision.
        if not await self.archive.replace_at_revision(message, expected_rev=expected_rev):
            return False
        log.info("changed an archived message", extra={"message_id": message.id, "rev": message.rev})
        await self.hot_copies.refresh(message)  # a restore of the hot window copied the old one meanwhile
        await self.archive_index.reindex(message)  # search finds what it says now (a tombstone: nothing)
        if queue_transcription:
            await self.redis.xadd(keys.transcription_stream(partition),
                                  {"id": message.id, "conversation": conversation, "attempt": "1"})
        await self._publish_if_newer(
            keys=[keys.published_revision(conversation, message.id), keys.conversation_members(conversation)],
            args=[message.rev, payload, _USER_CHANNEL, PUBLISHED_REVISION_TTL_SECONDS],
        )
        return True
