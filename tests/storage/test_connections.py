"""The Redis client: new pooled connections (a burst of first requests opens hundreds) cost no
package metadata lookup, and each names the app to Redis (CLIENT LIST shows who is connected)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis import utils as redis_utils

from api.dev_servers import start_redis
from storage.connections import close_redis, open_redis


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
