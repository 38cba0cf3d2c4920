"""Listing online users pages through Redis: a page costs O(page), not O(online users)."""

from __future__ import annotations

from storage.ids import new_id
from storage.presence import PresenceTracker
from tests.storage.conftest import MessageStores


async def test_online_pages_are_bounded_and_in_id_order(message_stores: MessageStores) -> None:
    presence = PresenceTracker(message_stores.redis)
    users = sorted(new_id() for _ in range(500))
    connections = {user: await presence.connect(user) for user in users}
    for user in users[1::50]:  # gone offline: never listed
        await presence.disconnect(user, connections[user])
    online = [u for u in users if u not in set(users[1::50])]

    assert await presence.online_page(after=None, count=2) == online[:2]  # two ids, not 490
    assert await presence.online_page(after=online[99], count=3) == online[100:103]
    listed: list[str] = []
    after = None
    while page := await presence.online_page(after=after, count=7):
        listed += page
        after = page[-1]
    assert listed == online
