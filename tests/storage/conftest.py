"""Message stores on a Redis of their own (the embedded launcher's) and a fresh database on
the session's MongoDB-wire server: the shared Redis's outbox and hot window are drained and
trimmed by the suite's running apps, which would take these tests' entries."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from api.dev_servers import EmbeddedServers, start_redis
from storage.archive import ArchiveStore
from storage.cold import ConversationDoc, MessageDoc, ReadMarkerDoc
from storage.connections import open_mongo, open_redis
from storage.conversation_lists import ConversationLists
from storage.conversations import ConversationStore
from storage.hot_window import HotWindow
from storage.ids import id_timestamp_ms, new_id
from storage.member_state import MemberStateStore
from storage.messages import MessageStore, SendOutcome
from storage.outbox import Persister
from storage.read_markers import ReadMarkerArchive
from storage.records import StoredConversation, StoredMessage
from tests.conftest import mongodb_url


def text_message(conversation_id: str, sender_id: str, receiver_id: str | None) -> StoredMessage:
    """A new text message in `conversation_id` (receiver None in a group)."""
    message_id = new_id()
    return StoredMessage(id=message_id, kind="TEXT", conversation_id=conversation_id, sender_id=sender_id,
                         receiver_id=receiver_id, text="hi", sent_at_ms=id_timestamp_ms(message_id))


@dataclass(frozen=True)
class MessageStores:
    redis: Redis
    archive: ArchiveStore
    read_markers: ReadMarkerArchive
    hot_window: HotWindow
    messages: MessageStore
    conversations: ConversationStore
    lists: ConversationLists
    member_state: MemberStateStore

    async def direct(self, a: str, b: str) -> StoredConversation:
        """The DIRECT conversation of `a` and `b`, made (in Redis) if it is new."""
        return await self.conversations.ensure_direct(a, b, int(time.time() * 1000))

    async def send(self, message: StoredMessage) -> SendOutcome:
        """Send as the resolver does: with the members it read from the conversation."""
        conversation = await self.conversations.get(message.conversation_id)
        return await self.messages.send(message, members=conversation.member_ids() if conversation else ())

    def persister(self, **options: Any) -> Persister:
        return Persister(self.redis, self.messages, self.archive, self.read_markers, self.conversations,
                         **options)


@asynccontextmanager
async def open_message_stores(dev_servers: EmbeddedServers, folder: Path) -> AsyncIterator[MessageStores]:
    """Message stores on a Redis of their own (started in `folder`) and a fresh database."""
    redis_server = start_redis(folder / "redis")
    database = f"stores_{uuid.uuid4().hex[:8]}"
    mongo = await open_mongo(mongodb_url(dev_servers, database), database)
    redis = await open_redis(redis_server.url)
    try:
        archive = ArchiveStore(mongo[database][MessageDoc.Settings.name])
        hot_window = HotWindow(redis, archive, window_seconds=86400, interval_seconds=3600)  # trimmed by hand
        read_markers = ReadMarkerArchive(mongo[database][ReadMarkerDoc.Settings.name])
        conversations = ConversationStore(redis, mongo[database][ConversationDoc.Settings.name], archive, read_markers)
        member_state = MemberStateStore(redis)
        yield MessageStores(redis=redis, archive=archive, read_markers=read_markers, hot_window=hot_window,
                            messages=MessageStore(redis, archive, hot_window), conversations=conversations,
                            lists=ConversationLists(redis, conversations, archive), member_state=member_state)
        member_state.close()
    finally:
        await redis.aclose()
        await mongo.drop_database(database)
        await mongo.close()
        redis_server.stop()


@pytest.fixture
async def message_stores(dev_servers: EmbeddedServers, tmp_path: Path) -> AsyncIterator[MessageStores]:
    async with open_message_stores(dev_servers, tmp_path) as stores:
        yield stores
