"""The start-up migration from the pair model (conversations keyed by two user ids) to
conversations as entities, on a dataset written by hand in the OLD shapes (Redis keys and
MongoDB documents as the pair model left them), followed by the start-up hot-window restore,
as `api.startup` runs them: nothing is lost, everything lands under the new keys, the old keys
are gone, and a second run changes nothing."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis

from api.dev_servers import EmbeddedServers
from storage import keys
from storage.conversations import from_doc
from storage.hot_window import hot_member
from storage.ids import direct_conversation_id, id_timestamp_ms, new_id
from storage.messages import ALREADY_SENT, with_id
from storage.migration import _carry_transcription_jobs, migrate_pair_model
from storage.outbox import ensure_group
from storage.records import StoredAudio, StoredMessage, StoredTranscript
from storage.slots import PARTITIONS, partition_of
from tests.storage.conftest import MessageStores, open_message_stores

OLD_READ_AT_MS = 1_800_000_000_000
CLIENT_ID = "old-client-id"
CLIENT_ID_TTL = 3600
OLD_OUTBOX, OLD_TRANSCRIPTION, OLD_DELAYED, OLD_HOT = "cg:outbox", "cg:transcribe", "cg:transcribe:delayed", \
    "cg:messages:hot"  # the pair model's global keys
RETRY_DUE_MS = 1_900_000_000_000


def _pair(a: str, b: str) -> str:
    """The pair model's conversation id: the smaller user id first."""
    return f"{a}:{b}" if a <= b else f"{b}:{a}"


def _date(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _old_redis_doc(message: StoredMessage) -> dict[str, Any]:
    """A message's JSON at `cg:message:<id>` in the pair model (no conversation_id)."""
    doc = message.to_document()
    del doc["conversation_id"]
    return {**doc, "participants": sorted({message.sender_id, message.receiver_id or ""}),
            "conversation": _pair(message.sender_id, message.receiver_id or "")}


def _old_mongo_doc(message: StoredMessage) -> dict[str, Any]:
    doc = _old_redis_doc(message)
    doc["_id"] = doc.pop("pk")
    doc["sent_at"] = _date(message.sent_at_ms)
    return doc


def _message(conversation_id: str, sender: str, receiver: str, text: str, *, at_ms: int | None = None,
             **extra: Any) -> StoredMessage:
    message_id = new_id(at_ms)
    return StoredMessage(id=message_id, kind=extra.pop("kind", "TEXT"), conversation_id=conversation_id,
                         sender_id=sender, receiver_id=receiver, text=text, sent_at_ms=id_timestamp_ms(message_id),
                         **extra)


@dataclass
class Migrated:
    stores: MessageStores
    alice: str
    bob: str
    carol: str
    dave: str
    conversation: str  # alice and bob's
    lone_conversation: str  # carol and dave's: every message still only in Redis
    archived_old: StoredMessage  # older than the hot window: MongoDB only
    archived: StoredMessage  # in both, the same revision
    edited_in_mongo: StoredMessage  # revision 0 in MongoDB ...
    edited: StoredMessage  # ... revision 1 (the transcript landed) in Redis only
    unarchived: StoredMessage  # only in Redis, never archived; its clientId reserved
    lone: StoredMessage
    old_keys: list[str] = field(default_factory=list)
    first_run: dict[str, Any] = field(default_factory=dict)
    second_run: dict[str, Any] = field(default_factory=dict)

    def newest(self) -> list[StoredMessage]:
        """Every message in its newest revision."""
        return [self.archived_old, self.archived, self.edited, self.unarchived, self.lone]


async def _write_old_dataset(stores: MessageStores) -> Migrated:
    redis, database = stores.redis, stores.archive.collection.database
    before = {key async for key in redis.scan_iter(match="*")}  # the search indexes' own
    alice, bob, carol, dave = new_id(), new_id(), new_id(), new_id()
    conversation, lone_conversation = direct_conversation_id(alice, bob), direct_conversation_id(carol, dave)
    two_days_ago_ms = int((time.time() - 2 * 86400) * 1000)  # outside the stores' one-day window
    archived_old = _message(conversation, alice, bob, "from long ago", at_ms=two_days_ago_ms)
    archived = _message(conversation, bob, alice, "archived")
    edited_in_mongo = _message(conversation, alice, bob, "", kind="VOICE", transcription_status="PENDING",
                               audio=StoredAudio(new_id(), "audio/ogg", 4, 1.0))
    edited = dataclasses.replace(edited_in_mongo, transcription_status="DONE", text="the transcript",
                                 transcript=StoredTranscript("the transcript", "fixed"), rev=1)
    unarchived = _message(conversation, alice, bob, "never archived", client_id=CLIENT_ID)
    lone = _message(lone_conversation, carol, dave, "only in redis")
    dataset = Migrated(stores, alice, bob, carol, dave, conversation, lone_conversation, archived_old, archived,
                       edited_in_mongo, edited, unarchived, lone)

    # MongoDB, as the pair model's persister wrote it.
    await database["messages"].insert_many([_old_mongo_doc(m) for m in (archived_old, archived, edited_in_mongo)])
    await database["read_markers"].insert_many([
        {"_id": f"{bob}:{alice}", "user_id": bob, "partner_id": alice, "up_to": archived_old.id,
         "at": _date(OLD_READ_AT_MS - 1000)},  # older than bob's marker in Redis
        {"_id": f"{alice}:{bob}", "user_id": alice, "partner_id": bob, "up_to": archived_old.id,
         "at": _date(OLD_READ_AT_MS - 2000)},  # alice's marker is in MongoDB only
    ])

    # Redis, in the pair model's layout.
    pair, lone_pair = _pair(alice, bob), _pair(carol, dave)
    hot = [archived, edited, unarchived, lone]
    for message in hot:
        await redis.json().set(f"cg:message:{message.id}", "$", _old_redis_doc(message))
    await redis.zadd(f"cg:conv:{pair}", {m.id: 0 for m in (archived, edited, unarchived)})
    await redis.zadd(f"cg:conv:{lone_pair}", {lone.id: 0})
    await redis.zadd(f"cg:conv-sent:{pair}:{alice}", {m.id: 0 for m in (edited, unarchived)})
    await redis.zadd(f"cg:conv-sent:{pair}:{bob}", {archived.id: 0})
    await redis.zadd(f"cg:conv-sent:{lone_pair}:{carol}", {lone.id: 0})
    await redis.zadd(OLD_HOT, {m.id: 0 for m in hot})
    await redis.hset(f"cg:read:{bob}", alice, archived.id)
    await redis.hset(f"cg:readat:{bob}", alice, OLD_READ_AT_MS)
    await redis.hset(f"cg:unread:{alice}", bob, 1)
    await redis.zadd(f"cg:convs:{alice}", {bob: archived.sent_at_ms})
    await redis.set(f"cg:convs-built:{alice}", "1")
    await redis.set(f"cg:typing:active:{alice}:{bob}", "1", px=60_000)
    await redis.set("cg:conv-sent:ready", "1")
    await redis.set("cg:archive:markers-ready", "1")
    await redis.sadd("cg:archive:conversations", pair)
    await redis.set(f"cg:clientid:{alice}:{CLIENT_ID}", unarchived.id, ex=CLIENT_ID_TTL)
    await redis.xgroup_create(OLD_OUTBOX, keys.OUTBOX_GROUP, id="0", mkstream=True)
    await redis.xadd(OLD_OUTBOX, {"id": unarchived.id})
    await redis.xadd(OLD_OUTBOX, {"id": lone.id})
    # bob's markRead above, acknowledged to him, not persisted yet.
    await redis.xadd(OLD_OUTBOX, {"kind": "read", "user": bob, "partner": alice, "up_to": archived.id,
                                  "at": str(OLD_READ_AT_MS)})
    # Transcription jobs by message id alone: one handed to a worker of the old release that never
    # acknowledged it, one waiting for its retry (its audio read failed once).
    await redis.xgroup_create(OLD_TRANSCRIPTION, keys.TRANSCRIPTION_GROUP, id="0", mkstream=True)
    await redis.xadd(OLD_TRANSCRIPTION, {"id": edited_in_mongo.id, "attempt": "1"})
    await redis.xreadgroup(keys.TRANSCRIPTION_GROUP, "old-worker", {OLD_TRANSCRIPTION: ">"})
    await redis.zadd(OLD_DELAYED, {f"{edited_in_mongo.id}:2:1": RETRY_DUE_MS})
    dataset.old_keys = [key async for key in redis.scan_iter(match="*") if key not in before]
    return dataset


async def _migrate(stores: MessageStores) -> None:
    """What `api.startup` runs."""
    await migrate_pair_model(stores.redis, stores.archive.collection.database, stores.archive)
    await stores.hot_window.restore()


async def _snapshot(stores: MessageStores) -> dict[str, Any]:
    redis: Redis = stores.redis
    found: dict[str, Any] = {}
    async for key in redis.scan_iter(match="*"):
        kind = await redis.type(key)
        if kind == "string":
            found[key] = await redis.get(key)
        elif kind == "hash":
            found[key] = await redis.hgetall(key)
        elif kind == "zset":
            found[key] = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            found[key] = sorted(await redis.smembers(key))
        elif kind == "stream":
            found[key] = await redis.xrange(key)
        elif kind == "ReJSON-RL":
            found[key] = await redis.json().get(key, "$")
        else:
            found[key] = kind
    database = stores.archive.collection.database
    for name in ("messages", "conversations", "read_markers"):
        found[f"mongo:{name}"] = await database[name].find().sort("_id", 1).to_list()
    return found


@pytest.fixture(scope="module")
async def migrated(dev_servers: EmbeddedServers, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Migrated]:
    async with open_message_stores(dev_servers, tmp_path_factory.mktemp("migration")) as stores:
        dataset = await _write_old_dataset(stores)
        await _migrate(stores)
        dataset.first_run = await _snapshot(stores)
        await _migrate(stores)  # the next start-up
        dataset.second_run = await _snapshot(stores)
        yield dataset


async def test_every_message_is_in_mongodb_in_its_conversation_and_newest_revision(migrated: Migrated) -> None:
    archive = migrated.stores.archive
    for message in migrated.newest():
        assert await archive.get(message.id) == message
    assert await archive.revisions([migrated.edited.id]) == {migrated.edited.id: 1}  # Redis's, not MongoDB's 0
    assert migrated.archived.conversation_id == direct_conversation_id(migrated.bob, migrated.alice)
    assert await archive.collection.count_documents({"conversation_id": {"$exists": False}}) == 0
    assert await archive.collection.count_documents({"conversation": {"$exists": True}}) == 0
    assert await archive.collection.count_documents({}) == len(migrated.newest())


async def test_the_pair_becomes_a_direct_conversation_document(migrated: Migrated) -> None:
    doc = await migrated.stores.conversations.collection.find_one({"_id": migrated.conversation})
    assert doc is not None
    conversation = from_doc(doc)
    assert (conversation.kind, conversation.member_ids(), conversation.version, conversation.archived) == (
        "DIRECT", sorted([migrated.alice, migrated.bob]), 1, False)
    assert {m.role for m in conversation.members} == {"MEMBER"}
    assert await migrated.stores.conversations.of_member(migrated.bob) == [conversation]


async def test_the_hot_window_holds_the_messages_under_the_new_keys(migrated: Migrated) -> None:
    stores, redis = migrated.stores, migrated.stores.redis
    hot = [migrated.archived, migrated.edited, migrated.unarchived]
    assert await redis.zrange(keys.conversation_messages(migrated.conversation), 0, -1) == [m.id for m in hot]
    assert await redis.zrange(keys.conversation_sent(migrated.conversation, migrated.alice), 0, -1) == [
        migrated.edited.id, migrated.unarchived.id]
    assert await stores.messages.get_hot(migrated.conversation, [m.id for m in hot]) == hot
    for message in [*hot, migrated.lone]:  # each in its conversation's partition's hot set
        assert await redis.zscore(keys.hot_messages(partition_of(message.conversation_id)), hot_member(message)) == 0
    hot_sets = [await redis.zrange(keys.hot_messages(p), 0, -1) for p in range(PARTITIONS)]
    assert sorted(e for entries in hot_sets for e in entries) == sorted(hot_member(m) for m in [*hot, migrated.lone])
    # Newest first: the hot part from Redis, then what only MongoDB holds (the conversation is marked).
    assert await stores.messages.page(migrated.conversation, before=None, limit=10) == [
        migrated.unarchived, migrated.edited, migrated.archived, migrated.archived_old]
    assert await stores.messages.page(migrated.lone_conversation, before=None, limit=10) == [migrated.lone]


async def test_read_markers_are_carried(migrated: Migrated) -> None:
    stores, state = migrated.stores, migrated.stores.member_state
    conversation = migrated.conversation
    # bob's marker was in Redis (newer than MongoDB's): carried with its time.
    [bobs] = await state.states(migrated.bob, [conversation])
    assert (bobs.read_up_to, bobs.unread, bobs.read_times_ms.get(migrated.bob)) == (
        migrated.archived.id, 2, OLD_READ_AT_MS)  # alice's edited voice and unarchived text came after it
    # MongoDB holds both markers in the new form; alice's (MongoDB only) reaches Redis with the mirror.
    markers = await stores.read_markers.of_conversation(conversation)
    assert markers[migrated.alice] == (migrated.archived_old.id, OLD_READ_AT_MS - 2000)
    assert await stores.read_markers.collection.count_documents({"partner_id": {"$exists": True}}) == 0
    assert await stores.conversations.get(conversation) is not None  # the API's membership check mirrors it
    [alices] = await state.states(migrated.alice, [conversation])
    assert (alices.read_up_to, alices.unread) == (migrated.archived_old.id, 1)  # bob's archived one
    [bobs_again] = await state.states(migrated.bob, [conversation])
    assert bobs_again.read_up_to == migrated.archived.id  # Redis's newer marker is kept over MongoDB's


async def test_the_client_id_reservation_is_carried(migrated: Migrated) -> None:
    stores = migrated.stores
    retry = _message(migrated.conversation, migrated.alice, migrated.bob, "never archived", client_id=CLIENT_ID)
    assert await stores.messages.reserve_client_id(retry) == migrated.unarchived.id
    assert 0 < await stores.redis.ttl(keys.client_id(migrated.alice, CLIENT_ID)) <= CLIENT_ID_TTL
    # The retried send under the reserved id is the first message, not a second one.
    assert await stores.conversations.get(migrated.conversation) is not None
    outcome = await stores.send(with_id(retry, migrated.unarchived.id))
    assert (outcome.status, outcome.message) == (ALREADY_SENT, migrated.unarchived)


async def test_the_old_keys_are_gone(migrated: Migrated) -> None:
    redis = migrated.stores.redis
    # Only the keys whose names the new layout kept (refilled with new entries) are there.
    assert sorted(k for k in migrated.old_keys if k in migrated.first_run) == [keys.archive_markers_ready()]
    assert {OLD_OUTBOX, OLD_TRANSCRIPTION, OLD_DELAYED, OLD_HOT} <= set(migrated.old_keys)
    untagged = {k for k in migrated.first_run if not k.startswith("mongo:") and "{" not in k and ":index:" not in k}
    assert untagged <= {keys.layout_version(), keys.archive_markers_ready(), keys.archive_search_ready()}
    for partition in range(PARTITIONS):
        assert all(":" in entry for entry in await redis.zrange(keys.hot_messages(partition), 0, -1))
        outbox = migrated.first_run.get(keys.outbox_stream(partition), [])
        assert [fields for _, fields in outbox if "conversation" not in fields] == []  # the old entries went


async def test_a_second_run_changes_nothing(migrated: Migrated) -> None:
    assert migrated.second_run == migrated.first_run


async def test_a_pair_whose_messages_were_all_still_in_redis_gets_its_conversation(migrated: Migrated) -> None:
    """carol and dave's only message had not reached MongoDB before the upgrade: it is archived
    by the migration, and the pair needs its `conversations` document like any other."""
    assert await migrated.stores.archive.get(migrated.lone.id) == migrated.lone
    doc = await migrated.stores.conversations.collection.find_one({"_id": migrated.lone_conversation})
    assert doc is not None, "no conversations document for a pair whose messages were all in Redis"
    assert from_doc(doc).member_ids() == sorted([migrated.carol, migrated.dave])


async def test_a_read_marker_waiting_on_the_old_outbox_reaches_mongodb(migrated: Migrated) -> None:
    """bob's last markRead was acknowledged but still on the old outbox: once the persister
    has drained, MongoDB must have it (else a Redis that loses its data moves bob's marker back)."""
    stores = migrated.stores
    await ensure_group(stores.redis)  # as the persister's start does
    persister = stores.persister()
    while await persister.drain_once():
        pass
    markers = await stores.read_markers.of_conversation(migrated.conversation)
    assert markers[migrated.bob] == (migrated.archived.id, OLD_READ_AT_MS)


async def test_pending_transcription_jobs_move_to_their_conversations_partition(migrated: Migrated) -> None:
    """The old global transcription stream and delayed set named messages by id alone: each job
    lands on the stream (or delayed set) of its message's conversation's partition, naming that
    conversation, so the worker reads the message with one key."""
    redis, conversation = migrated.stores.redis, migrated.conversation
    partition, voice = partition_of(conversation), migrated.edited_in_mongo.id
    jobs = [(p, fields) for p in range(PARTITIONS) for _, fields in await redis.xrange(keys.transcription_stream(p))]
    assert jobs == [(partition, {"id": voice, "conversation": conversation, "attempt": "1"})]
    delayed = [(p, job, due) for p in range(PARTITIONS)
               for job, due in await redis.zrange(keys.transcription_delayed(p), 0, -1, withscores=True)]
    assert delayed == [(partition, f"{voice}:{conversation}:2:1", RETRY_DUE_MS)]
    for key in (OLD_TRANSCRIPTION, OLD_DELAYED, OLD_OUTBOX, OLD_HOT):
        assert not await redis.exists(key)


async def test_moving_a_transcription_job_again_after_a_crash_adds_nothing(message_stores: MessageStores) -> None:
    """A start-up that died between appending a job to its partition's stream and deleting it
    from the old stream moves it again on the next start-up: the job is there once."""
    redis, database = message_stores.redis, message_stores.archive.collection.database
    message_id, conversation = new_id(), direct_conversation_id(new_id(), new_id())
    await database["messages"].insert_one({"_id": message_id, "conversation_id": conversation})
    old_entry = await redis.xadd(OLD_TRANSCRIPTION, {"id": message_id, "attempt": "1"})
    await _carry_transcription_jobs(redis, database)
    await redis.xadd(OLD_TRANSCRIPTION, {"id": message_id, "attempt": "1"}, id=old_entry)  # as if never deleted
    await _carry_transcription_jobs(redis, database)
    assert await redis.xrange(keys.transcription_stream(partition_of(conversation))) == [
        (old_entry, {"id": message_id, "conversation": conversation, "attempt": "1"})]
    assert not await redis.exists(OLD_TRANSCRIPTION)
