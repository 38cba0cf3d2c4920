"""Opening and closing the Redis and MongoDB clients; nothing connects at import."""

from __future__ import annotations

from beanie import init_beanie
from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from storage.cold import DOCUMENT_MODELS
from storage.hot import bind_models, ensure_indexes


async def open_redis(url: str, *, max_connections: int = 64) -> Redis:
    # Retries reach the pooled connections only when passed here explicitly: a restarted
    # Redis then costs a reconnect, not a failed request per stale connection.
    redis = Redis.from_url(
        url,
        decode_responses=True,
        max_connections=max_connections,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 8),
    )
    await redis.ping()
    bind_models(redis)
    await ensure_indexes(redis)
    return redis


async def open_mongo(url: str, database: str) -> AsyncMongoClient:
    client: AsyncMongoClient = AsyncMongoClient(url, tz_aware=True)
    await init_beanie(database=client[database], document_models=DOCUMENT_MODELS)
    return client
