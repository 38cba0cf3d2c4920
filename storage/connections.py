"""Opening and closing the Redis and MongoDB clients; nothing connects at import."""

from __future__ import annotations

from beanie import init_beanie
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from storage.cold import DOCUMENT_MODELS
from storage.hot import bind_models, ensure_indexes


async def open_redis(url: str, *, max_connections: int = 64) -> Redis:
    redis = Redis.from_url(url, decode_responses=True, max_connections=max_connections)
    await redis.ping()
    bind_models(redis)
    await ensure_indexes(redis)
    return redis


async def open_mongo(url: str, database: str) -> AsyncMongoClient:
    client: AsyncMongoClient = AsyncMongoClient(url, tz_aware=True)
    await init_beanie(database=client[database], document_models=DOCUMENT_MODELS)
    return client
