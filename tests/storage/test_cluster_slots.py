"""Redis Cluster runs a Lua script, a MULTI/EXEC transaction or a multi-key command only when all
its keys hash to one slot (storage/slots.py). Every script call, every MULTI pipeline and every
other command the message and conversation stores and the transcription worker send is recorded
with its keys while they do their work (a direct conversation made, and made again after Redis
lost it, a group mirrored, text and voice sent, a message updated, reads, unread counts, typing,
transcription jobs taken, retried and released, the persister draining, push jobs queued and
handled, mutes written, read and restored, the hot window trimmed (with the search entries of
archived messages written, changed and rebuilt) and hydrated, the restore steps after a data
loss, a conversation re-mirrored from MongoDB, a block and an unblock with the blocker's copy
rebuilt), then each call's keys are mapped to slots with redis-py's own `key_slot`: every one
must be a single slot.

Presence is left out (made cluster-safe separately)."""

from __future__ import annotations

import dataclasses
import hashlib
import time
import traceback
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio.client
from redis.commands.core import AsyncScript
from redis.crc import key_slot
from redis.exceptions import ResponseError

from api.dev_servers import EmbeddedServers
from push.crypto import Vapid, generate_private_key, load_private_key
from push.worker import PushWorker
from storage import archive_index as archive_index_module
from storage import blocks as blocks_module
from storage import conversations as conversations_module
from storage import hot_copy as hot_copy_module
from storage import hot_window as hot_window_module
from storage import keys
from storage import member_state as member_state_module
from storage import message_changes as message_changes_module
from storage import messages as messages_module
from storage import outbox as outbox_module
from storage import scripts as scripts_module
from storage.audio import AudioStore
from storage.blocks import BlockStore
from storage.ids import first_id_at, id_timestamp_ms, new_id
from storage.message_changes import Change
from storage.messages import SENT
from storage.mutes import MuteStore
from storage.outbox import ensure_group, ensure_groups
from storage.presence import PresenceTracker
from storage.pubsub import PubSubHub
from storage.push import PushSubscriptionStore
from storage.records import StoredAudio, StoredConversation, StoredMember, StoredMessage, StoredTranscript
from storage.slots import partition_of
from storage.users import UserStore
from tests.storage.conftest import MessageStores, open_message_stores
from transcription import worker as worker_module
from transcription.base import DisabledTranscriber
from transcription.worker import TranscriptionWorker

_ROOT = Path(__file__).resolve().parents[2]
_RECORDED_PACKAGES = (str(_ROOT / "storage"), str(_ROOT / "transcription"), str(_ROOT / "push"))
_SCRIPTS = {  # script text -> its constant's name, to name a call in a report
    value: f"{module.__name__}.{name}"
    for module in (archive_index_module, blocks_module, conversations_module, hot_copy_module, hot_window_module,
                   member_state_module, messages_module, message_changes_module, outbox_module, worker_module)
    for name, value in vars(module).items()
    if name.isupper() and isinstance(value, str) and "redis.call" in value
}
_SHAS = {hashlib.sha1(text.encode()).hexdigest(): name for text, name in _SCRIPTS.items()}
_NOT_RECORDED = {"EVALSHA", "EVAL", "SCRIPT", "COMMAND", "PUBLISH", "PING", "INFO", "FT.SEARCH", "FT.INFO",
                 "FT._LIST", "FT.CREATE", "SCAN", "MULTI", "EXEC"}


@dataclass
class Call:
    kind: str  # "script", "MULTI" or "command"
    name: str  # the script's constant (or first line), the commands of a MULTI, a command's name
    where: str  # the storage/ frame that made the call
    commands: list[tuple[Any, ...]] = dataclasses.field(default_factory=list)  # for MULTI and command
    keys: list[str] = dataclasses.field(default_factory=list)

    def slots(self) -> set[int]:
        return {key_slot(k.encode()) for k in self.keys}

    def report(self) -> str:
        by_slot = ", ".join(f"{k} -> {key_slot(k.encode())}" for k in self.keys)
        return f"{self.kind} {self.name} at {self.where}: {len(self.slots())} slots [{by_slot}]"


def _caller() -> str:
    for frame in reversed(traceback.extract_stack()[:-2]):
        if frame.filename.startswith(_RECORDED_PACKAGES):
            return f"{Path(frame.filename).relative_to(_ROOT)}:{frame.lineno} ({frame.name})"
    return "?"


def _script_name(script: AsyncScript) -> str:
    text = script.script if isinstance(script.script, str) else script.script.decode()
    return _SCRIPTS.get(text) or next(line for line in text.splitlines() if line.strip())


class Recorder:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.on = False
        self.group_id = ""
        self.direct_id = ""

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        recorder = self
        script_call = AsyncScript.__call__
        send = redis.asyncio.client.Redis._send_command_parse_response
        transaction = redis.asyncio.client.Pipeline._execute_transaction
        pipeline = redis.asyncio.client.Pipeline._execute_pipeline
        by_hand = scripts_module._send_and_read

        async def recorded_script(self: AsyncScript, keys: Sequence[str] | None = None,
                                  args: Sequence[Any] | None = None, client: Any = None) -> Any:
            if recorder.on:
                recorder.calls.append(Call("script", _script_name(self), _caller(), keys=list(keys or [])))
            return await script_call(self, keys=keys, args=args, client=client)

        async def recorded_send(self: Any, conn: Any, command_name: Any, *args: Any, **options: Any) -> Any:
            if recorder.on:
                recorder.command(args)
            return await send(self, conn, command_name, *args, **options)

        async def recorded_transaction(self: Any, connection: Any, commands: Any, raise_on_error: Any) -> Any:
            if recorder.on:
                names = ", ".join(str(args[0]) for args, _ in commands)
                recorder.calls.append(Call("MULTI", f"[{names}]", _caller(), commands=[args for args, _ in commands]))
            return await transaction(self, connection, commands, raise_on_error)

        async def recorded_pipeline(self: Any, connection: Any, commands: Any, raise_on_error: Any) -> Any:
            if recorder.on:
                for args, _ in commands:
                    recorder.command(args)
            return await pipeline(self, connection, commands, raise_on_error)

        async def recorded_by_hand(connection: Any, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
            if recorder.on:
                for args in commands:
                    recorder.command(args)
            return await by_hand(connection, commands)

        monkeypatch.setattr(AsyncScript, "__call__", recorded_script)
        monkeypatch.setattr(scripts_module, "_send_and_read", recorded_by_hand)
        monkeypatch.setattr(redis.asyncio.client.Redis, "_send_command_parse_response", recorded_send)
        monkeypatch.setattr(redis.asyncio.client.Pipeline, "_execute_transaction", recorded_transaction)
        monkeypatch.setattr(redis.asyncio.client.Pipeline, "_execute_pipeline", recorded_pipeline)

    def command(self, args: tuple[Any, ...]) -> None:
        name = str(args[0]).upper()
        where = _caller()
        if name == "EVALSHA" and where != "?":  # a script run by hand in a pipeline: its keys are named
            key_count = int(args[2])
            self.calls.append(Call("script", _SHAS.get(str(args[1]), str(args[1])), where,
                                   keys=[str(k) for k in args[3:3 + key_count]]))
            return
        if where != "?" and name.split(" ")[0] not in _NOT_RECORDED and len(args) > 2:  # 1 argument: 1 key at most
            self.calls.append(Call("command", name, where, commands=[args]))

    async def resolve_keys(self, client: Any) -> None:
        """The keys of each MULTI and command, as the server finds them (COMMAND GETKEYS)."""
        for call in self.calls:
            for args in call.commands:
                if str(args[0]).upper() == "JSON.MGET":  # GETKEYS names its first key only
                    call.keys += [str(k) for k in args[1:-1]]
                    continue
                try:
                    found = await client.command_getkeys(*args)
                except ResponseError:  # a command without keys
                    continue
                call.keys += [k.decode() if isinstance(k, bytes) else k for k in found]


def _text(conversation: StoredConversation, sender: str, text: str, *, sent_at_ms: int | None = None) -> StoredMessage:
    message_id = new_id(sent_at_ms)
    return StoredMessage(id=message_id, kind="TEXT", conversation_id=conversation.id, sender_id=sender,
                         receiver_id=conversation.partner_of(sender), text=text, sent_at_ms=id_timestamp_ms(message_id))


async def _exercise(stores: MessageStores, recorder: Recorder) -> None:
    redis, state = stores.redis, stores.member_state
    now = int(time.time() * 1000)
    two_days_ago = now - 2 * 86400 * 1000  # outside the stores' one-day window
    alice, bob, carol = new_id(), new_id(), new_id()
    await ensure_group(redis)
    persister = stores.persister()
    stores.messages.push_queue = "1"  # new messages are queued for Web Push too
    recorder.on = True

    direct = await stores.direct(alice, bob)
    assert await stores.direct(bob, alice) == direct  # found in the mirror the second time
    recorder.direct_id = direct.id
    group_id = new_id()
    while partition_of(group_id) == partition_of(direct.id):  # two partitions: a cross-partition batch shows
        group_id = new_id()
    group = StoredConversation(id=group_id, kind="GROUP", title="three", version=1, created_ms=now, members=(
        StoredMember(alice, "OWNER", now), StoredMember(bob, "ADMIN", now), StoredMember(carol, "MEMBER", now)))
    await stores.conversations.insert(group)
    recorder.group_id = group.id

    old = [_text(direct, alice, "old direct", sent_at_ms=two_days_ago),
           _text(group, carol, "old group", sent_at_ms=two_days_ago + 1)]
    text = dataclasses.replace(_text(direct, alice, "hello"), client_id="hello-1")
    in_group = _text(group, bob, "hello all")
    voice_id = new_id()
    voice = StoredMessage(id=voice_id, kind="VOICE", conversation_id=direct.id, sender_id=bob, receiver_id=alice,
                          text="", sent_at_ms=id_timestamp_ms(voice_id),
                          audio=StoredAudio(new_id(), "audio/ogg", 4, 1.0), transcription_status="PENDING")
    for message in [*old, text, in_group, voice]:
        assert (await stores.send(message)).status == SENT
    done = dataclasses.replace(voice, rev=1, transcription_status="DONE", transcript=StoredTranscript("hi", "fixed"))
    await stores.messages.update(done)
    await stores.messages.update(dataclasses.replace(done, rev=2, transcription_status="PENDING"),
                                 queue_transcription=True)
    reacted = await stores.messages.changes.change(  # an edit, a reaction, a delete: the same script
        text.id, direct.id, lambda m: Change(dataclasses.replace(m, reactions=(("👍", (bob,)),))))
    assert reacted is not None and reacted.rev == 1

    assert await state.mark_read(direct.id, bob, text.id, direct=True, now_ms=now) == 1
    assert await state.mark_read(group.id, alice, in_group.id, direct=False, now_ms=now) == 1
    assert [s.unread for s in await state.states(bob, [direct.id, group.id])] == [0, 1]
    assert await state.set_typing(group.id, carol, True, direct=False, now_ms=now)
    assert await state.set_typing(group.id, carol, False, direct=False, now_ms=now)
    assert await state.set_typing(direct.id, alice, True, direct=True, now_ms=now)
    assert await state.set_typing(direct.id, alice, False, direct=True, now_ms=now)

    # The voice message's jobs: its audio is missing, so each attempt is retried, then FAILED.
    worker = TranscriptionWorker(redis, messages=stores.messages, audio=AudioStore(stores.archive.collection.database),
                                 transcriber=DisabledTranscriber(), max_attempts=2, retry_base_seconds=0)
    await worker._ensure_group()
    for _ in range(2):
        while entries := await worker._next_entries():
            for entry in entries:
                await worker._handle(*entry)
        await worker.release_due()
    found = await stores.messages.find(voice.id, conversation_id=direct.id)
    assert found is not None and found.transcription_status == "FAILED"

    while await persister.drain_once():
        pass
    # A second message under an archived clientId (its reservation expired): withdrawn.
    await stores.archive.ensure_client_id_index()
    repeat = dataclasses.replace(_text(direct, alice, "hello"), client_id="hello-1")
    assert (await stores.send(repeat)).status == SENT
    while await persister.drain_once():
        pass
    assert await stores.messages.find(repeat.id, conversation_id=direct.id) is None

    # Web Push: bob mutes the group, the worker handles every queued message (nobody subscribed).
    database = stores.archive.collection.database
    mutes = MuteStore(redis, database["conversation_mutes"])
    await mutes.mute(bob, group.id, None)
    assert await mutes.muted_among(group.id, [alice, bob, carol], now) == {bob}
    pusher = PushWorker(redis, messages=stores.messages, conversations=stores.conversations,
                        users=UserStore(redis, database["users"]), presence=PresenceTracker(redis), mutes=mutes,
                        subscriptions=PushSubscriptionStore(database["push_subscriptions"]),
                        vapid=Vapid(load_private_key(generate_private_key()), "mailto:ops@example.com"))
    await ensure_groups(redis, keys.push_streams(), keys.PUSH_GROUP)
    handled = 0
    while entries := await pusher._next_entries(16):
        for entry in entries:
            await pusher._handle(*entry)
            handled += 1
    assert handled == 6  # every message sent above, the clientId repeat included
    await pusher.http.aclose()
    await redis.delete(keys.user_mutes(bob))
    assert await mutes.restore() == 1
    await mutes.unmute(bob, group.id)
    assert await stores.archive.revisions([m.id for m in [*old, text, in_group]]) == {
        **{m.id: 0 for m in [*old, in_group]}, text.id: 1}
    assert await stores.hot_window.trim(window_start_ms=stores.hot_window.window_start_ms()) == 2
    edited = await stores.messages.changes.change(  # archived: MongoDB, its search entry, then events one key each
        old[0].id, direct.id, lambda m: Change(dataclasses.replace(m, text="edited", edited_at_ms=now)))
    assert edited is not None and edited.rev == 1
    await stores.hot_window.archive_index.rebuild(stores.archive, before_id=first_id_at(two_days_ago + 1000))
    assert await stores.hot_window.hydrate(window_start_ms=two_days_ago - 1000) == 2
    # Restore steps after Redis lost its data (one single-key command each).
    await stores.messages.restore_client_ids()
    await stores.messages.requeue_lost_transcriptions()

    # Redis lost the group's mirror: read again from MongoDB, with its persisted read marker.
    await redis.delete(keys.conversation_meta(group.id), keys.conversation_members(group.id),
                       keys.read_markers(group.id), keys.read_times(group.id))
    assert (await stores.conversations.get(group.id) or group).member_ids() == group.member_ids()
    assert await redis.hget(keys.read_markers(group.id), alice) == in_group.id
    # Redis lost the DIRECT conversation: made again, then MongoDB's state adopted by the persister.
    await redis.delete(keys.conversation_meta(direct.id), keys.conversation_members(direct.id))
    await stores.conversations.make_direct(alice, bob, now)
    while await persister.drain_once():
        pass
    assert await stores.conversations.mirrored(direct.id) == direct

    # Blocks: each change and each rebuild of a user's copy touch that user's slot only.
    blocks = BlockStore(redis, stores.archive.collection.database["blocks"], PubSubHub(redis), max_blocks=10,
                        cache_seconds=0)
    await blocks.block(alice, bob, datetime.now(UTC))
    assert await blocks.hidden_from(carol, [alice, bob]) == set()
    await blocks.unblock(alice, bob)
    assert (await blocks.blocking_of_many([alice]))[alice] == frozenset()
    recorder.on = False


@pytest.fixture(scope="module")
async def recorded(dev_servers: EmbeddedServers, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Recorder]:
    recorder = Recorder()
    with pytest.MonkeyPatch.context() as monkeypatch:
        recorder.install(monkeypatch)
        async with open_message_stores(dev_servers, tmp_path_factory.mktemp("slots")) as stores:
            await _exercise(stores, recorder)
            await recorder.resolve_keys(stores.redis)
    yield recorder


def _offending(calls: Sequence[Call]) -> list[Call]:
    return [c for c in calls if len(c.slots()) > 1]


def _fail_with(offending: Sequence[Call], what: str) -> None:
    if offending:
        pytest.fail(f"{len(offending)} {what} span several hash slots:\n" + "\n".join(c.report() for c in offending),
                    pytrace=False)


def test_every_script_we_meant_to_cover_was_recorded(recorded: Recorder) -> None:
    names = {c.name for c in recorded.calls if c.kind == "script"}
    expected = {f"storage.{m}" for m in ("conversations._MIRROR", "conversations._CREATE_DIRECT",
                                          "conversations._ADOPT_DIRECT", "messages._SEND",
                                          "message_changes._CHANGE", "message_changes._PUBLISH_IF_NEWER",
                                          "member_state._MARK_READ", "member_state._STATE",
                                          "member_state._TYPING_START", "member_state._TYPING_STOP",
                                          "hot_window._REMOVE_IF_UNCHANGED", "messages._WITHDRAW",
                                          "archive_index._INDEX_IF_NEWER", "blocks._CHANGED", "blocks._BUILD",
                                          "outbox._ACKNOWLEDGE")} \
        | {"transcription.worker._RELEASE_DUE"}
    assert expected <= names
    multi = [set(c.keys) for c in recorded.calls if c.kind == "MULTI"]
    direct, group = recorded.direct_id, recorded.group_id
    acknowledged = [set(c.keys) for c in recorded.calls if c.name == "storage.outbox._ACKNOWLEDGE"]
    for conversation in (direct, group):  # the persister's acknowledgement, per partition's stream
        assert {keys.outbox_stream(partition_of(conversation))} in acknowledged
    assert {keys.transcription_stream(partition_of(direct))} in multi  # the worker's acknowledgement
    for conversation in (direct, group):  # the push worker's acknowledgement
        assert {keys.push_stream(partition_of(conversation))} in multi
    assert {keys.read_markers(group), keys.read_times(group)} in multi  # markers restored from MongoDB
    sends = [c for c in recorded.calls if c.kind == "script" and c.name == "storage.messages._SEND"]
    assert any(keys.conversation_members(direct) in c.keys for c in sends)  # pipelined with the list touch
    # The partitioned keys were among what the scripts touched.
    touched = {k for c in recorded.calls if c.kind == "script" for k in c.keys}
    for key in (keys.hot_messages, keys.outbox_stream, keys.transcription_stream, keys.transcription_delayed,
                keys.push_stream):
        assert key(partition_of(direct)) in touched


def test_scripts_and_transactions_stay_in_one_slot(recorded: Recorder) -> None:
    """Every Lua script and MULTI, the partitioned outbox, transcription streams, delayed sets
    and hot sets included: a conversation's scripts use its partition's, the hot window is
    trimmed one partition at a time."""
    atomic = [c for c in recorded.calls if c.kind in ("script", "MULTI")]
    assert atomic
    _fail_with(_offending(atomic), "scripts or MULTI pipelines")


def test_multi_key_commands_stay_in_one_slot(recorded: Recorder) -> None:
    """A multi-key command (JSON.MGET, DEL of several keys, ...) is refused across slots too
    (CROSSSLOT)."""
    commands = [c for c in recorded.calls if c.kind == "command"]
    assert any(c.name == "JSON.MGET" for c in commands)  # the hot window's, one partition each
    _fail_with(_offending(commands), "multi-key commands")


def test_every_recorded_call_stays_in_one_slot(recorded: Recorder) -> None:
    _fail_with(_offending(recorded.calls), "recorded calls")

