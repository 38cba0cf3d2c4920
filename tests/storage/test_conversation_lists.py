"""Each user's conversation list: its entries live in their conversations' partitions, so the
send script updates every member's list in the same atomic step as the message; a page merges
the partitions in (activity desc, id desc) order, ties at one millisecond included."""

from __future__ import annotations

from redis.asyncio import Redis

from storage import keys
from storage.ids import new_id
from storage.messages import SENT
from storage.migration import migrate_pair_model
from storage.slots import PARTITIONS, partition_of
from tests.storage.conftest import MessageStores, text_message


async def _pages(stores: MessageStores, user_id: str, first: int) -> list[str]:
    seen: list[str] = []
    after = None
    while True:
        ids, more = await stores.lists.page(user_id, first=first, after=after)
        seen += ids
        if not more:
            return seen
        after = ((await stores.lists.activity(user_id, ids[-1:]))[0], ids[-1])


async def test_pages_merge_the_partitions_in_activity_order_ties_included(message_stores: MessageStores) -> None:
    stores, user = message_stores, new_id()
    await stores.redis.set(keys.user_conversations_built(user), "1")  # no rebuild from MongoDB
    activity = {new_id(): 1_000 + n // 3 for n in range(30)}  # three at each ms
    activity |= {new_id(): 2_000 for _ in range(40)}  # 40 at one ms: more than a page fetches per partition
    for conversation_id, at_ms in activity.items():
        await stores.lists.touch([user], conversation_id, at_ms)
    assert len({partition_of(c) for c in activity}) == PARTITIONS  # the list spans every partition
    expected = [c for c, _ in sorted(activity.items(), key=lambda item: (item[1], item[0]), reverse=True)]
    for first in (1, 3, 7, 100):
        assert await _pages(stores, user, first) == expected
    assert sorted(await stores.lists.all_ids(user)) == sorted(activity)
    assert await stores.lists.page(user, first=0, after=None) == ([], True)


async def test_the_send_script_moves_each_members_list(message_stores: MessageStores) -> None:
    stores, alice, bob = message_stores, new_id(), new_id()
    conversation = await stores.direct(alice, bob)
    message = text_message(conversation.id, alice, bob)
    assert (await stores.messages.send(message, members=(alice, bob))).status == SENT
    for user in (alice, bob):  # no persister ran: the script itself did it
        assert await stores.lists.activity(user, [conversation.id]) == [message.sent_at_ms]


async def test_the_send_script_leaves_the_list_of_someone_no_longer_a_member(message_stores: MessageStores) -> None:
    stores, alice, bob, carol = message_stores, new_id(), new_id(), new_id()
    conversation = await stores.direct(alice, bob)
    message = text_message(conversation.id, alice, bob)
    # The caller read carol as a member; by the time the script runs she is not.
    assert (await stores.messages.send(message, members=(alice, bob, carol))).status == SENT
    assert await stores.lists.activity(carol, [conversation.id]) == [0]
    assert await stores.redis.exists(keys.conversation_list(partition_of(conversation.id), carol)) == 0


async def test_lists_of_the_per_user_layout_move_into_the_partitions(message_stores: MessageStores) -> None:
    stores, user = message_stores, new_id()
    redis: Redis = stores.redis
    old_key = f"cg:user:{{u:{user}}}:convs"
    activity = {new_id(): 5_000 + n for n in range(20)}
    await redis.zadd(old_key, activity)
    await redis.set(keys.user_conversations_built(user), "1")
    await redis.set(keys.layout_version(), "2")
    database = stores.archive.collection.database
    await migrate_pair_model(redis, database, stores.archive)
    expected = [c for c, _ in sorted(activity.items(), key=lambda item: item[1], reverse=True)]
    assert await _pages(stores, user, 6) == expected
    assert await redis.exists(old_key) == 0
    assert await redis.get(keys.layout_version()) == "3"
    await migrate_pair_model(redis, database, stores.archive)  # the next start-up: nothing changes
    assert await _pages(stores, user, 6) == expected


async def test_a_member_the_caller_did_not_read_is_named_in_the_outcome(message_stores: MessageStores) -> None:
    """Someone added after the caller read the members: the script cannot know their list key
    (every key is declared), so it names them and the caller moves their list."""
    stores, alice, bob = message_stores, new_id(), new_id()
    conversation = await stores.direct(alice, bob)
    message = text_message(conversation.id, alice, bob)
    outcome = await stores.messages.send(message, members=(alice,))
    assert outcome.status == SENT and sorted(outcome.member_ids) == sorted((alice, bob))
    assert await stores.lists.activity(bob, [conversation.id]) == [0]
    assert await stores.lists.activity(alice, [conversation.id]) == [message.sent_at_ms]
