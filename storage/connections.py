"""Opening and closing the Redis and MongoDB clients; nothing connects at import."""

from __future__ import annotations

from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

import hiredis
import orjson
from beanie import init_beanie
from pymongo import AsyncMongoClient
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import Connection as RedisPyConnection
from redis.asyncio.connection import SSLConnection as RedisPySSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff  # type: ignore[attr-defined]  # redis 5.1+; types-redis: 4.6
from redis.commands.json import JSON
from redis.driver_info import DriverInfo

from storage.cold import DOCUMENT_MODELS
from storage.hot import ensure_indexes


def _driver_info() -> DriverInfo:
    """What each connection tells Redis (CLIENT SETINFO): redis-py and this app, with versions.
    Made once: redis-py would otherwise read its package metadata for every new connection."""
    try:
        version = metadata.version("chattergram")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        version = "0"
    return DriverInfo().add_upstream_driver("chattergram", version)


_DRIVER_INFO = _driver_info()


class PackedByHiredis:
    """Commands packed by hiredis (C) instead of redis-py's Python loop: the same bytes
    (tests/storage/test_connections.py), about 7x faster for a send's script call (25 -> 3.4 us)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        name = args[0]
        if isinstance(name, str | bytes) and (" " in name if isinstance(name, str) else b" " in name):
            args = (*name.split(), *args[1:])  # "CONFIG GET": one word each, as redis-py sends it
        try:
            return [hiredis.pack_command(args)]
        except TypeError:  # a bool, a None...: redis-py's own packing says what is wrong (DataError)
            return super().pack_command(*args)  # type: ignore[misc,no-any-return]  # mixed into a redis-py class


class Connection(PackedByHiredis, RedisPyConnection):
    pass


class SSLConnection(PackedByHiredis, RedisPySSLConnection):
    pass


_CONNECTION_CLASSES: dict[str, type[RedisPyConnection]] = {"redis": Connection, "rediss": SSLConnection}


async def open_redis(url: str, *, max_connections: int = 512, pool_timeout_seconds: float = 10.0) -> Redis:
    # A blocking pool: under a burst, requests wait for a free connection instead of failing
    # with "Too many connections" (redis-py's default pool raises at once).
    # Retries reach the pooled connections only when passed here explicitly: a restarted
    # Redis then costs a reconnect, not a failed request per stale connection.
    connection_class = _CONNECTION_CLASSES.get(urlsplit(url).scheme)  # a unix socket keeps redis-py's
    options = {"connection_class": connection_class} if connection_class else {}
    pool: BlockingConnectionPool[RedisPyConnection] = BlockingConnectionPool.from_url(
        url,
        **options,
        decode_responses=True,
        max_connections=max_connections,
        timeout=pool_timeout_seconds,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 8),
        driver_info=_DRIVER_INFO,
    )
    # The client owns its pool, so closing it disconnects the pooled connections too
    # (Redis(connection_pool=pool) would leave them open until garbage collection).
    redis: Redis = Redis.from_pool(pool)  # type: ignore[attr-defined]  # redis 5.0.1+; types-redis describes 4.6
    await redis.ping()
    await ensure_indexes(redis)
    return redis


async def close_redis(redis: Redis) -> None:
    await redis.aclose()  # type: ignore[attr-defined]  # redis 5+ (close() is deprecated); types-redis describes 4.6


async def open_mongo(url: str, database: str) -> AsyncMongoClient:
    client: AsyncMongoClient = AsyncMongoClient(url, tz_aware=True)
    await init_beanie(database=client[database], document_models=DOCUMENT_MODELS)
    return client


class _OrjsonDecoder:
    decode = staticmethod(orjson.loads)


def json_commands(redis: Redis) -> JSON:
    """RedisJSON commands whose replies are decoded by orjson (faster than redis-py's `json`)."""
    return redis.json(decoder=_OrjsonDecoder())
