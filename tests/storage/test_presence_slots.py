"""Every presence script touches the keys of ONE Redis Cluster hash slot (see storage.slots):
connecting, heartbeating, disconnecting and sweeping, for users of every partition."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.crc import key_slot

from storage.ids import new_id
from storage.presence import PresenceTracker
from storage.slots import PARTITIONS, partition_of
from tests.storage.conftest import MessageStores


def slots_of(keys: list[Any], args: list[Any]) -> set[int]:
    """The slots of a call's KEYS, and of key prefixes passed in ARGV (scripts that build keys
    from ids they read, as the sweep does, must build them in the same slot)."""
    named = [str(k) for k in keys] + [a for a in args if isinstance(a, str) and a.startswith("cg:presence:")]
    return {key_slot(name.encode()) for name in named}


async def test_every_presence_script_call_stays_in_one_slot(
    message_stores: MessageStores, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis = message_stores.redis
    calls: list[tuple[str, set[int]]] = []
    register = redis.register_script

    def recording(source: str) -> Any:
        script = register(source)

        async def call(keys: list[Any], args: list[Any], client: Any = None) -> Any:
            calls.append((source, slots_of(keys, args)))
            return await script(keys=keys, args=args, client=client)

        return call

    monkeypatch.setattr(redis, "register_script", recording)
    presence = PresenceTracker(redis, ttl_seconds=0.5, heartbeat_seconds=3600)  # beats by hand
    users = [new_id() for _ in range(48)]
    assert len({partition_of(u) for u in users}) > PARTITIONS // 2  # many partitions involved
    connections = {u: [await presence.connect(u), await presence.connect(u)] for u in users}
    await presence.heartbeat(chunk=7)
    for user in users[:16]:
        for connection in connections[user]:
            await presence.disconnect(user, connection)
    assert await presence.online_among(users) == set(users[16:])
    assert await presence.online_page(after=None, count=100) == sorted(users[16:])
    presence._local.clear()  # this instance "crashes": its connections expire unbeaten
    await asyncio.sleep(0.6)
    assert sorted(await presence.sweep()) == sorted(users[16:])
    assert await presence.online_page(after=None, count=100) == []

    spanning = [(source.strip().splitlines()[-1], slots) for source, slots in calls if len(slots) != 1]
    assert not spanning, spanning[:3]
    assert len(calls) >= 48 * 2 + 48 * 2 + 16 * 2 + 1  # connects, beats, disconnects, sweeps
