"""Benchmark data: users (through the API and directly in storage) with their tokens, and
conversations deep enough for full history pages."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

import httpx

from bench.stack import Server, run_wrk
from bench.stats import latency_summary

PASSWORD = "bench password 1234"
DATABASE = "chattergram_bench"


async def create_users(api: Server, *, redis_url: str, mongodb_url: str, secret: str, count: int,
                       via_api: int) -> tuple[list[tuple[str, str]], dict]:
    """`via_api` users register through the API (argon2id hashing, ~0.1-0.4 s of CPU each on
    this machine); the rest are created with the same storage call the resolver makes
    (`UserStore.create`: MongoDB record + Redis mirror, then `note_new_account`: the Redis
    copies a request checks) with one precomputed hash of the same password, and get tokens
    signed with the server's secret. Returns
    [(user id, token)] and registration figures."""
    from argon2 import PasswordHasher

    from resolvers.auth import note_new_account
    from resolvers.tokens import TokenService
    from storage.blocks import BlockStore
    from storage.cold import UserDoc
    from storage.connections import close_redis, open_mongo, open_redis
    from storage.pubsub import PubSubHub
    from storage.revocations import RevocationStore
    from storage.users import UserStore

    run = secrets.token_hex(3)
    names = [f"bench_{run}_{i:05d}" for i in range(count)]
    result: list[tuple[str, str] | None] = [None] * count
    register_ms: list[float] = []
    query = "mutation R($input: RegisterInput!) { register(input: $input) { token user { id } } }"
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=16)) as client:
        semaphore = asyncio.Semaphore(16)

        async def register(i: int) -> None:
            async with semaphore:
                t0 = time.perf_counter()
                r = await client.post(api.graphql_url, json={"query": query, "variables": {"input": {
                    "username": names[i], "email": f"{names[i]}@example.com", "password": PASSWORD}}})
                register_ms.append((time.perf_counter() - t0) * 1000)
                data = r.json()
                if data.get("errors"):
                    raise RuntimeError(f"register failed: {data['errors']}")
                payload = data["data"]["register"]
                result[i] = (payload["user"]["id"], payload["token"])

        via_api = min(via_api, count)
        await asyncio.gather(*(register(i) for i in range(via_api)))
    api_seconds = time.perf_counter() - started

    started = time.perf_counter()
    redis = await open_redis(redis_url)
    mongo = await open_mongo(mongodb_url, DATABASE)
    try:
        users = UserStore(redis, mongo[DATABASE][UserDoc.Settings.name])
        hub = PubSubHub(redis)  # unused: only the stores' new-account writes run here
        revocations = RevocationStore(redis, mongo[DATABASE][UserDoc.Settings.name], hub,
                                      token_ttl_seconds=24 * 3600, cache_seconds=0)
        blocks = BlockStore(redis, mongo[DATABASE]["blocks"], hub, max_blocks=1, cache_seconds=0)
        password_hash = PasswordHasher().hash(PASSWORD)
        tokens = TokenService(secret=secret, ttl_seconds=24 * 3600)
        semaphore = asyncio.Semaphore(32)

        async def create(i: int) -> None:
            async with semaphore:
                user = await users.create(username=names[i], email=f"{names[i]}@example.com",
                                          password_hash=password_hash)
                await note_new_account(revocations, blocks, user.id)
                result[i] = (user.id, tokens.issue(user.id)[0])

        await asyncio.gather(*(create(i) for i in range(via_api, count)))
    finally:
        await close_redis(redis)
        await mongo.close()
    direct_seconds = time.perf_counter() - started
    figures = {
        "users": count,
        "registered_via_api": via_api,
        "register_api_s": round(api_seconds, 2),
        "register_api_per_s": round(via_api / api_seconds, 1) if via_api else 0.0,
        "register_latency_ms": latency_summary(register_ms),
        "created_directly": count - via_api,
        "create_direct_s": round(direct_seconds, 2),
    }
    return [r for r in result if r is not None], figures


def write_tokens(path: Path, users: list[tuple[str, str]]) -> None:
    """One line per user: token, partner id (users 2k and 2k+1 are partners), user id."""
    lines = []
    for i, (user_id, token) in enumerate(users):
        partner = users[i ^ 1][0] if (i ^ 1) < len(users) else user_id
        lines.append(f"{token} {partner} {user_id}")
    path.write_text("\n".join(lines) + "\n")


def ensure_history_depth(api: Server, tokens: Path, redis_url: str, depth: int = 60) -> dict:
    """Every conversation gets at least `depth` messages (a capped wrk send run when the load
    runs left fewer), so each history request returns a full page of 50."""
    import math

    import redis

    from storage import keys
    from storage.ids import direct_conversation_id

    lines = [ln.split() for ln in tokens.read_text().splitlines()]
    client = redis.Redis.from_url(redis_url)
    try:
        pipe = client.pipeline(transaction=False)
        for i in range(0, len(lines) - 1, 2):
            pipe.zcard(keys.conversation_messages(direct_conversation_id(lines[i][2], lines[i + 1][2])))
        fewest = min(pipe.execute())
    finally:
        client.close()
    added = 0
    if fewest < depth:
        per_user = math.ceil((depth - fewest) / 2)
        run = run_wrk(api.graphql_url, tokens=tokens, connections=min(50, len(lines)), threads=2, duration_s=120,
                      cap=per_user)
        added = run["ok"]
    return {"fewest_before": fewest, "added": added}


async def create_group(api: Server, tokens: Path, members: int) -> str:
    """A group of the first `members` users of `tokens` (line format: see `write_tokens`), as
    clients make one: the first user creates it with half of the others (createGroup), then
    adds the rest (addMembers). Returns the conversation id."""
    lines = [ln.split() for ln in tokens.read_text().splitlines()[:members]]
    if len(lines) < members:
        raise ValueError(f"a group of {members} needs {members} users, there are {len(lines)}")
    owner_token, ids = lines[0][0], [ln[2] for ln in lines[1:]]
    half = len(ids) // 2
    create = ("mutation G($input: CreateGroupInput!) { createGroup(input: $input) { id memberCount } }",
              {"input": {"title": f"bench group of {members}", "memberIds": ids[:half]}})
    add = "mutation A($id: ID!, $users: [ID!]!) { addMembers(conversationId: $id, userIds: $users) { id memberCount } }"
    async with httpx.AsyncClient(timeout=60, headers={"Authorization": f"Bearer {owner_token}"}) as client:

        async def call(query: str, variables: dict) -> dict:
            data = (await client.post(api.graphql_url, json={"query": query, "variables": variables})).json()
            if data.get("errors"):
                raise RuntimeError(f"group set-up failed: {data['errors']}")
            return next(iter(data["data"].values()))

        group = await call(*create)
        if ids[half:]:
            group = await call(add, {"id": group["id"], "users": ids[half:]})
    if group["memberCount"] != members:
        raise RuntimeError(f"the group has {group['memberCount']} members, expected {members}")
    return str(group["id"])
