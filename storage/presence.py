"""Who is online: read side. A user is online while one of their connections is unexpired."""

from __future__ import annotations

import time
from collections.abc import Sequence

from redis.asyncio import Redis

from storage import keys


def now_ms() -> int:
    return int(time.time() * 1000)


async def online_among(redis: Redis, user_ids: Sequence[str]) -> set[str]:
    if not user_ids:
        return set()
    scores = await redis.zmscore(keys.online_users(), list(user_ids))
    now = now_ms()
    return {uid for uid, score in zip(user_ids, scores, strict=True) if score and score > now}


async def online_user_ids(redis: Redis) -> set[str]:
    members = await redis.zrangebyscore(keys.online_users(), now_ms(), "+inf")
    return set(members)
