"""The ceiling: a bare Strawberry mutation doing ONE Redis pipeline (JSON.SET + XADD + PUBLISH).

    .venv/bin/python -m bench.ceiling_app --port 8100 --workers 2   (CEILING_REDIS_URL=redis://...)

Same mutation name, input and selection as the app's `sendMessage`, so the same wrk script
loads both; `strawberry.extensions.ParserCache` + `ValidationCache`; served by uvicorn with
the settings `chattergram serve` uses (workers, uvloop, httptools, keep-alive 5 s, no access
log), a blocking pool of 64 Redis connections per worker. No authentication, no validation,
no Starlette middleware, no RediSearch index on its keys: what is left is the cost of
Strawberry + uvicorn + one Redis round-trip, which no implementation of `sendMessage` on this
stack can beat.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid

import orjson
import strawberry
from redis.asyncio import BlockingConnectionPool, Connection, Redis
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache

_redis: Redis | None = None


def redis() -> Redis:
    global _redis
    if _redis is None:  # created inside the worker's event loop, on first use
        # A blocking pool: requests wait for one of 64 connections. redis-py's default pool
        # (100 connections) raises "Too many connections" at 500 concurrent requests per worker.
        pool: BlockingConnectionPool[Connection] = BlockingConnectionPool.from_url(
            os.environ["CEILING_REDIS_URL"], max_connections=64, timeout=20
        )
        _redis = Redis(connection_pool=pool)
    return _redis


@strawberry.input
class SendMessageInput:
    receiver_id: strawberry.ID
    text: str | None = None
    audio_id: strawberry.ID | None = None
    client_id: str | None = None


@strawberry.type
class Message:
    id: strawberry.ID
    sent_at: str


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "hello"


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def send_message(self, input: SendMessageInput) -> Message:
        message_id = uuid.uuid4().hex
        sent_at = time.time()
        doc = orjson.dumps({"id": message_id, "receiver_id": input.receiver_id, "text": input.text, "sent_at": sent_at})
        async with redis().pipeline(transaction=False) as pipe:
            pipe.json().set(f"ceiling:msg:{message_id}", "$", orjson.loads(doc))
            pipe.xadd("ceiling:outbox", {"id": message_id}, maxlen=100_000, approximate=True)
            pipe.publish(f"ceiling:events:{input.receiver_id}", doc)
            await pipe.execute()
        return Message(id=strawberry.ID(message_id), sent_at=str(sent_at))


schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    extensions=[lambda: ParserCache(maxsize=1024), lambda: ValidationCache(maxsize=1024)],
)


def create_app() -> GraphQL:
    return GraphQL(schema, graphql_ide=None)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    uvicorn.run(
        "bench.ceiling_app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_keep_alive=5,
    )


if __name__ == "__main__":
    main()
