"""Search latency and memory over a seeded hot window and archive.

    .venv/bin/python -m bench.search_latency [--messages 50000] [--archived 1000000] [--conversations 1000]
                                             [--queries 2000]

Starts its own embedded Redis (Search + JSON), creates the app's indexes, seeds hot messages
(the same documents `sendMessage` writes) and archived ones (the slim search entries the hot
window's trim leaves, storage/archive_index.py) across conversations between 2 × conversations
users, then times `SearchIndex.messages` — the one query the `search` resolver runs over both,
scoped to one viewer's conversations — for random one- and two-word queries. Memory per
archived message is Redis's `used_memory` growth while seeding the entries (index included)
divided by their number.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import cast

from redis.asyncio import Redis

from api.dev_servers import start_redis
from storage import keys
from storage.archive import ArchiveStore
from storage.archive_index import slim_entry
from storage.connections import close_redis, open_redis
from storage.ids import direct_conversation_id, new_id
from storage.records import StoredMessage
from storage.search import SearchIndex

VOCABULARY = [
    "meeting", "report", "lunch", "friday", "tomorrow", "morning", "project", "deadline", "budget", "review", "design",
    "launch", "coffee", "dinner", "weekend", "holiday", "flight", "train", "station", "hotel", "ticket", "birthday",
    "present", "party", "music", "guitar", "saxophone", "concert", "rehearsal", "football", "match", "score", "weather",
    "rain", "sunny", "walk", "park", "garden", "kitchen", "recipe", "pasta", "pizza", "salad", "doctor", "appointment",
    "dentist", "school", "homework", "exam", "teacher", "library", "book", "chapter", "novel", "movie", "cinema",
    "series", "episode", "phone", "laptop", "screen", "battery", "charger",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


async def seed(redis: Redis, messages: int, conversations: int) -> dict[str, list[str]]:
    """Returns each user's conversations (DIRECT, one per pair of users)."""
    users = [new_id() for _ in range(conversations * 2)]
    pairs = [(users[2 * i], users[2 * i + 1]) for i in range(conversations)]
    member_of = {u: [direct_conversation_id(a, b)] for a, b in pairs for u in (a, b)}
    rng = random.Random(7)
    batch = 1000
    for start in range(0, messages, batch):
        async with redis.pipeline(transaction=False) as pipe:
            for _ in range(min(batch, messages - start)):
                a, b = rng.choice(pairs)
                sender, receiver = (a, b) if rng.random() < 0.5 else (b, a)
                message_id = new_id()
                text = " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(4, 16)))
                conversation = direct_conversation_id(a, b)
                message = StoredMessage(message_id, "TEXT", conversation, sender, receiver, text,
                                        int(time.time() * 1000))
                pipe.json().set(keys.message_key(conversation, message_id), "$", message.to_document())
                pipe.zadd(keys.conversation_messages(conversation), {message_id: 0})
                pipe.zadd(keys.conversation_sent(conversation, sender), {message_id: 0})
            await pipe.execute()
    return member_of


async def seed_archived(redis: Redis, messages: int, member_of: dict[str, list[str]]) -> None:
    """Slim entries of archived messages in the same conversations, a year old and older."""
    conversations = sorted({c for ids in member_of.values() for c in ids})
    rng = random.Random(8)
    year_ago_ms = int((time.time() - 365 * 86400) * 1000)
    batch = 2000
    for start in range(0, messages, batch):
        async with redis.pipeline(transaction=False) as pipe:
            for n in range(start, min(start + batch, messages)):
                conversation = rng.choice(conversations)
                text = " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(4, 16)))
                message = StoredMessage(new_id(), "TEXT", conversation, "", None, text, year_ago_ms - n * 1000)
                pipe.execute_command("JSON.SET", keys.archived_message_entry(conversation, message.id), "$",
                                     slim_entry(message))
            await pipe.execute()


async def used_memory(redis: Redis) -> int:
    return int((await redis.info("memory"))["used_memory"])


async def wait_indexed(redis: Redis, expected: int) -> None:
    while True:
        info = await redis.ft("cg:message:index").info()
        if int(info["num_docs"]) >= expected and str(info.get("indexing", "0")) in ("0", "False"):
            return
        await asyncio.sleep(0.5)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000, help="hot messages")
    parser.add_argument("--archived", type=int, default=1_000_000, help="archived messages (slim entries)")
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server = start_redis(Path(folder))
        try:
            redis = await open_redis(server.url)
            t0 = time.perf_counter()
            users = await seed(redis, args.messages, args.conversations)
            await wait_indexed(redis, args.messages)
            before = await used_memory(redis)
            await seed_archived(redis, args.archived, users)
            await wait_indexed(redis, args.messages + args.archived)
            per_archived = (await used_memory(redis) - before) / args.archived if args.archived else 0.0
            seeded = time.perf_counter() - t0
            rng = random.Random(11)
            index = SearchIndex(redis, cast(ArchiveStore, None))  # times the index query: MongoDB is never read
            latencies: list[float] = []
            hits = 0
            for i in range(args.queries):
                terms = rng.sample(VOCABULARY, 1 if i % 2 else 2)
                t = time.perf_counter()
                viewer = rng.choice(list(users))
                total, _ = await index.messages(conversation_ids=users[viewer], terms=terms,
                                                prefix_last=True, limit=20)
                latencies.append((time.perf_counter() - t) * 1000)
                hits += total
            await close_redis(redis)
        finally:
            server.stop()
    summary = {
        "messages": args.messages, "archived": args.archived, "conversations": args.conversations,
        "queries": args.queries, "bytes_per_archived_message": round(per_archived),
        "seed_and_index_s": round(seeded, 1), "mean_hits": round(hits / args.queries, 1),
        "p50_ms": round(percentile(latencies, 0.50), 2), "p90_ms": round(percentile(latencies, 0.90), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2), "max_ms": round(max(latencies), 2),
        "mean_ms": round(statistics.mean(latencies), 2),
    }
    print(f"search over {args.messages:,} hot + {args.archived:,} archived messages "
          f"({summary['bytes_per_archived_message']} bytes per archived one): "
          f"p50 {summary['p50_ms']} ms, p90 {summary['p90_ms']} ms, "
          f"p99 {summary['p99_ms']} ms (max {summary['max_ms']} ms, {summary['mean_hits']} hits per query)")
    print(json.dumps(summary))


if __name__ == "__main__":
    asyncio.run(main())
