"""The Redis client: new pooled connections (a burst of first requests opens hundreds) cost no
package metadata lookup, and each names the app to Redis (CLIENT LIST shows who is connected);
commands are packed by hiredis into the very bytes redis-py would send."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis import utils as redis_utils
from redis.asyncio.connection import Connection as RedisPyConnection
from redis.exceptions import DataError

from api.dev_servers import start_redis
from storage.connections import Connection, close_redis, open_redis


async def test_new_connections_name_the_app_without_reading_package_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_redis(tmp_path / "redis")
    try:
        client = await open_redis(server.url)
        looked_up: list[str] = []
        version = redis_utils.metadata.version  # type: ignore[attr-defined]  # types-redis: 4.6

        def counted(name: str) -> str:
            looked_up.append(name)
            return str(version(name))

        monkeypatch.setattr(redis_utils.metadata, "version", counted)  # type: ignore[attr-defined]
        await asyncio.gather(*(client.blpop([f"empty-{n}"], timeout=0.2) for n in range(20)))  # 20 connections at once
        assert looked_up == []
        clients = await client.client_list()
        assert len(clients) >= 20
        assert {c["lib-name"] for c in clients} == {"redis-py(chattergram_v0.1.0)"}
        await close_redis(client)
    finally:
        server.stop()


PACKED = [
    ("EVALSHA", "0" * 40, 2, "cg:conv:{p3}:a", "{u:é}:k", b'{"text":"h\xc3\xa9"}', "événement 🎙",
     0, -7, 2**70, 1.5, 0.1, 1e20, "", b""),
    ("ZADD", "cg:{u:x}:convs", "GT", 1_732_960_000_000, "01HX"),
    ("CONFIG GET", "maxmemory"),  # a two-word command name goes as two words
    (b"SCRIPT LOAD", "return 1"),
]


def test_commands_are_packed_as_redis_py_packs_them() -> None:
    ours, theirs = Connection(), RedisPyConnection()
    for args in PACKED:
        assert b"".join(ours.pack_command(*args)) == b"".join(theirs.pack_command(*args))
    for wrong in (True, None):  # what redis-py refuses is refused alike
        with pytest.raises(DataError):
            ours.pack_command("SET", "k", wrong)


async def test_commands_packed_this_way_reach_redis_intact(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis")
    try:
        client = await open_redis(server.url)
        assert client.connection_pool.connection_class is Connection
        value = "événement 🎙 " * 1000  # beyond redis-py's 6,000-byte chunking
        await client.set("k", value)
        assert await client.get("k") == value
        assert await client.zadd("z", {"a": 1.5}) == 1
        assert await client.zscore("z", "a") == 1.5
        await close_redis(client)
    finally:
        server.stop()
