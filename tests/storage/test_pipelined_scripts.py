"""Scripts run many at once by hand (storage.scripts.run_pipelined: EVALSHA in one pipeline,
no SCRIPT EXISTS first) still run after Redis forgot its scripts (a restart, SCRIPT FLUSH):
the calls refused with NOSCRIPT run again, loaded."""

from __future__ import annotations

import time

from storage.ids import new_id
from tests.storage.conftest import MessageStores


async def test_conversations_are_read_after_redis_flushed_its_scripts(message_stores: MessageStores) -> None:
    conversations = message_stores.conversations
    alice, bob, carol = new_id(), new_id(), new_id()
    now = int(time.time() * 1000)
    made = [await conversations.make_direct(alice, bob, now), await conversations.make_direct(alice, carol, now)]
    await message_stores.redis.script_flush()
    found = await conversations.get_many([c.id for c in made])
    assert [found[c.id] for c in made] == made
    await message_stores.redis.script_flush()
    assert await conversations.get(made[0].id) == made[0]
