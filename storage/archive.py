"""The MongoDB message archive: the durable record of every message."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from storage.cursors import in_batches
from storage.records import StoredMessage

log = logging.getLogger(__name__)

DUPLICATE_KEY = 11000
CLIENT_ID_INDEX = "sender_client_id"
# A clientId past its Redis reservation (expired, or lost with Redis) is still unique here.
_CLIENT_ID_KEYS = [("sender_id", 1), ("client_id", 1)]
_HAS_CLIENT_ID = {"client_id": {"$type": "string"}}  # not $exists: every other message has client_id null

# A message refused because its sender's clientId is archived under another id (the first
# message's): (the refused message, the first message's id).
Repeat = tuple[StoredMessage, str]


def to_doc(message: StoredMessage) -> dict[str, object]:
    """The MongoDB document: the hot document with `_id` and a real `sent_at` date."""
    doc = message.to_document()
    doc["_id"] = doc.pop("pk")
    doc["sent_at"] = datetime.fromtimestamp(message.sent_at_ms / 1000, UTC)
    return doc


def from_raw(doc: dict[str, Any]) -> StoredMessage:
    return StoredMessage.from_document({**doc, "pk": doc["_id"]})


def _replace_if_not_older(doc: dict[str, Any]) -> ReplaceOne[dict[str, Any]]:
    """Replace the archived document unless its rev is higher (`$not $gt` also matches one
    archived without a rev, which `revisions` reads as 0). A newer one fails the filter, so the
    upsert's insert hits the unique `_id` (E11000): that error is the stale write's no-op."""
    return ReplaceOne({"_id": doc["_id"], "rev": {"$not": {"$gt": doc["rev"]}}}, doc, upsert=True)


def _is_client_id_clash(error: dict[str, Any]) -> bool:
    return "client_id" in (error.get("keyPattern") or {}) or f" {CLIENT_ID_INDEX} " in error.get("errmsg", "")


def _duplicate_id_writes(exc: BulkWriteError) -> list[int]:
    """The indexes of a bulk write's operations refused on a duplicate key (`_id`, or a
    sender's clientId); re-raises `exc` if anything else failed (another write error, or the
    write concern was not met)."""
    errors = exc.details.get("writeErrors", [])
    if exc.details.get("writeConcernErrors") or any(e.get("code") != DUPLICATE_KEY for e in errors):
        raise exc
    return [e["index"] for e in errors]


class ArchiveStore:
    """Reads and idempotent writes of the `messages` collection."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self.collection = collection

    async def upsert(self, messages: Sequence[StoredMessage]) -> list[Repeat]:
        """Idempotent: replaying the same messages leaves one document each, latest state; an
        older revision never replaces a newer one (a stalled persister's late write is a no-op).

        Most messages are new, so they go in one unordered insert (cheaper for the server than
        upserts); those already archived fail on the unique `_id` and are replaced unless the
        archived revision is newer. Returns the repeats: messages refused because their
        sender's clientId is archived under another id (nothing of them is written).
        """
        if not messages:
            return []
        docs = [to_doc(m) for m in messages]
        try:
            await self.collection.insert_many(docs, ordered=False)
            return []
        except BulkWriteError as exc:
            refused = _duplicate_id_writes(exc)
            clashes = [e["index"] for e in exc.details["writeErrors"] if _is_client_id_clash(e)]
        repeats = await self._repeats([messages[i] for i in clashes])
        archived = [docs[i] for i in refused if messages[i].id not in repeats]
        await self._replace_archived(archived)
        return [(m, repeats[m.id]) for m in messages if m.id in repeats]

    async def _replace_archived(self, archived: list[dict[str, Any]]) -> None:
        """Replace each archived document unless MongoDB has a newer revision of it."""
        if not archived:
            return
        try:
            await self.collection.bulk_write([_replace_if_not_older(doc) for doc in archived], ordered=False)
            return
        except BulkWriteError as exc:
            refused = _duplicate_id_writes(exc)
            clashes = {e["index"] for e in exc.details["writeErrors"] if _is_client_id_clash(e)}
        if stale := [archived[i]["_id"] for i in refused if i not in clashes]:
            log.info("archive writes skipped: a newer revision is archived", extra={"ids": stale})
        # Its clientId is another's (a repeat archived before the index): it stays cleared.
        await self._replace_archived([{**archived[i], "client_id": None} for i in clashes])

    async def replace_at_revision(self, message: StoredMessage, *, expected_rev: int) -> bool:
        """Replace an archived message only if it still has `expected_rev` (a change decided on
        that state; `None` in the filter also matches one archived without a rev, read as 0).
        False when it changed meanwhile or is not archived."""
        revisions: list[int | None] = [expected_rev, None] if expected_rev == 0 else [expected_rev]
        result = await self.collection.replace_one({"_id": message.id, "rev": {"$in": revisions}}, to_doc(message))
        return result.matched_count == 1

    async def get(self, message_id: str) -> StoredMessage | None:
        doc = await self.collection.find_one({"_id": message_id})
        return from_raw(doc) if doc else None

    async def get_many(self, message_ids: Sequence[str]) -> dict[str, StoredMessage]:
        """Message id -> the archived message, for those MongoDB has (one query)."""
        if not message_ids:
            return {}
        cursor = self.collection.find({"_id": {"$in": list(message_ids)}})
        return {doc["_id"]: from_raw(doc) async for doc in cursor}

    async def page(self, conversation_id: str, *, before: str | None, limit: int) -> list[StoredMessage]:
        """Up to `limit` archived messages older than `before`, newest first."""
        query: dict[str, object] = {"conversation_id": conversation_id}
        if before:
            query["_id"] = {"$lt": before}
        cursor = self.collection.find(query).sort("_id", -1).limit(limit)
        return [from_raw(d) async for d in cursor]

    async def revisions(self, message_ids: Sequence[str]) -> dict[str, int]:
        """Message id -> the revision MongoDB holds, for those it has."""
        if not message_ids:
            return {}
        cursor = self.collection.find({"_id": {"$in": list(message_ids)}}, {"_id": 1, "rev": 1})
        return {doc["_id"]: int(doc.get("rev", 0)) async for doc in cursor}

    def since(self, first_id: str, *, batch_size: int) -> AsyncGenerator[list[StoredMessage], None]:
        """Every message from id `first_id` on, oldest first, in batches."""
        cursor = self.collection.find({"_id": {"$gte": first_id}}).sort("_id", 1)
        return in_batches(cursor, batch_size, from_raw)

    async def conversations_before(self, first_id: str) -> AsyncIterator[str]:
        """The conversations that have messages older than id `first_id`."""
        cursor = await self.collection.aggregate([
            {"$match": {"_id": {"$lt": first_id}}},
            {"$group": {"_id": "$conversation_id"}},
        ])
        async for row in cursor:
            yield row["_id"]

    def pending_transcriptions(self, *, batch_size: int = 500) -> AsyncGenerator[list[tuple[str, str]], None]:
        """(message id, conversation id) of every archived message whose transcription is
        PENDING, in batches (index `pending_transcriptions`)."""
        cursor = self.collection.find({"transcription_status": "PENDING"}, {"_id": 1, "conversation_id": 1})
        return in_batches(cursor, batch_size, lambda doc: (doc["_id"], doc["conversation_id"]))

    def client_ids_since(self, first_id: str, *, batch_size: int = 500
                         ) -> AsyncGenerator[list[tuple[str, str, str, int]], None]:
        """(sender id, clientId, message id, sent ms) of every message from id `first_id` on
        that was sent with a clientId, oldest first, in batches."""
        cursor = self.collection.find(
            {"_id": {"$gte": first_id}, **_HAS_CLIENT_ID}, {"_id": 1, "sender_id": 1, "client_id": 1, "sent_at_ms": 1},
        ).sort("_id", 1)
        return in_batches(cursor, batch_size,
                           lambda doc: (doc["sender_id"], doc["client_id"], doc["_id"], int(doc["sent_at_ms"])))

    async def latest_ids(self, conversation_ids: Sequence[str]) -> dict[str, str]:
        """Conversation -> id of its newest archived message, for those that have one."""
        if not conversation_ids:
            return {}
        cursor = await self.collection.aggregate([
            {"$match": {"conversation_id": {"$in": list(conversation_ids)}}},
            {"$group": {"_id": "$conversation_id", "last": {"$max": "$_id"}}},
        ])
        return {row["_id"]: row["last"] async for row in cursor}

    async def ensure_client_id_index(self) -> None:
        """The unique (sender, clientId) index, made at start-up (a no-op once it exists). Data
        archived before it may hold repeats: each later copy keeps its message but loses its
        clientId (logged), so the index can be built and the clientId names the first message."""
        for _ in range(3):  # again if an older instance archived a repeat meanwhile (a rolling deploy)
            try:
                await self._create_client_id_index()
                return
            except DuplicateKeyError:
                cleared = await self._clear_repeated_client_ids()
                log.warning("archived clientId repeats: the later copies' clientId cleared", extra={"cleared": cleared})
        await self._create_client_id_index()

    async def _create_client_id_index(self) -> None:
        await self.collection.create_index(_CLIENT_ID_KEYS, name=CLIENT_ID_INDEX, unique=True,
                                           partialFilterExpression=_HAS_CLIENT_ID)

    async def _clear_repeated_client_ids(self) -> int:
        """Unset the clientId of every archived message but the first (lowest id) of each
        (sender, clientId). Returns how many were cleared."""
        cursor = await self.collection.aggregate([
            {"$match": _HAS_CLIENT_ID},
            {"$group": {"_id": {"s": "$sender_id", "c": "$client_id"}, "ids": {"$push": "$_id"}, "n": {"$sum": 1}}},
            {"$match": {"n": {"$gt": 1}}},
        ])
        later = [i async for row in cursor for i in sorted(row["ids"])[1:]]
        if later:
            await self.collection.update_many({"_id": {"$in": later}}, {"$unset": {"client_id": ""}})
        return len(later)

    async def _repeats(self, clashing: Sequence[StoredMessage]) -> dict[str, str]:
        """Of messages refused on the clientId index: message id -> the id that holds its
        sender's clientId, for those not archived under their own id (a replay of an archived
        one may be refused on either index)."""
        if not clashing:
            return {}
        cursor = self.collection.find(
            {"$or": [{"_id": {"$in": [m.id for m in clashing]}},
                     *({"sender_id": m.sender_id, "client_id": m.client_id} for m in clashing)]},
            {"_id": 1, "sender_id": 1, "client_id": 1},
        )
        found = [d async for d in cursor]
        archived = {d["_id"] for d in found}
        holders = {(d["sender_id"], d["client_id"]): d["_id"] for d in found if d.get("client_id")}
        return {m.id: holder for m in clashing if m.id not in archived
                and (holder := holders.get((m.sender_id, m.client_id))) is not None}
