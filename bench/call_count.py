"""What one known-partner sendMessage costs the API in Python function calls: a count a busy
machine does not change (cProfile over an in-process app on embedded Redis and MongoDB, requests
one at a time, the outbox persister's share included). With `--new-pairs N`, the seed
scenario's pattern instead: 2N users never seen before, each sending 10 messages to its
partner, round-robin (the first sends make the pairs' conversations).

    python -m bench.call_count [--requests N | --new-pairs N] [--profile FILE]

It needs only `create_app` and the public API, so it measures an older checkout too: run this
file with that checkout's interpreter from its directory (`cd <checkout> && .venv/bin/python
<path>/bench/call_count.py`); the app is imported from the current directory. It prints one
JSON line: calls per request, and CPU per request under the profiler (inflated by it: compare
counts, not times). `--profile` keeps the profile, to see where the calls go (`python -m pstats`).
"""

from __future__ import annotations

import os
import sys

# Run as a file, this folder comes first on the path, where bench/profile.py would shadow the
# standard library's (cProfile imports it): the checkout run from takes its place.
if __name__ == "__main__" and sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
    sys.path[0] = os.getcwd()

import argparse
import asyncio
import contextlib
import cProfile
import json
import pstats
import secrets
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from api.app import create_app
from api.dev_servers import embedded_servers
from api.settings import Settings

SEND = "mutation Send($input: SendMessageInput!) { sendMessage(input: $input) { id sentAt } }"
REGISTER = "mutation R($input: RegisterInput!) { register(input: $input) { token user { id } } }"
WARM_UP = 50  # the conversation made, every cache filled
SEED_SENDS_PER_USER = 10


async def post(http: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None = None) -> Any:
    """A GraphQL request's data; raises on errors."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = (await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)).json()
    if body.get("errors"):
        raise RuntimeError(f"request failed: {body['errors']}")
    return body["data"]


@contextlib.asynccontextmanager
async def in_process_app(workdir: Path) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the app running in this process, on embedded Redis and MongoDB."""
    with embedded_servers(workdir / "services") as services:
        settings: dict[str, Any] = {
            "redis_url": services.redis_url, "mongodb_url": services.mongodb_url.rsplit("/", 1)[0] + "/in_process",
            "jwt_secret": secrets.token_urlsafe(48), "data_dir": workdir / "data", "stt_engine": "none",
            "rate_limits": "off", "log_level": "WARNING",
        }
        try:  # cheap password hashing, where the checkout has the setting
            app = create_app(Settings(**settings, password_hash_time_cost=1, password_hash_memory_kib=1024))
        except ValueError:  # an older checkout without it (pydantic's ValidationError)
            app = create_app(Settings(**settings))
        async with LifespanManager(app, startup_timeout=120, shutdown_timeout=30) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=60) as http:
                yield http


async def register(http: httpx.AsyncClient, count: int) -> list[tuple[str, str]]:
    """`count` new users: (id, token) each."""
    run = secrets.token_hex(3)
    accounts = []
    for n in range(count):
        name = f"bench_{run}_{n:05d}"
        data = await post(http, REGISTER, {"input": {"username": name, "email": f"{name}@example.com",
                                                     "password": "bench password 1234"}})
        accounts.append((data["register"]["user"]["id"], data["register"]["token"]))
    return accounts


def _seed_sends(accounts: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(token, partner id) of every send in the seed pattern: pairs (2k, 2k+1), 10 rounds."""
    return [(accounts[i][1], accounts[i ^ 1][0]) for _ in range(SEED_SENDS_PER_USER) for i in range(len(accounts))]


async def measure(requests: int, new_pairs: int = 0) -> tuple[dict[str, float], cProfile.Profile]:
    with tempfile.TemporaryDirectory(prefix="chattergram-call-count-") as workdir:
        async with in_process_app(Path(workdir)) as http:
            (_, token), (partner, _) = await register(http, 2)
            for n in range(WARM_UP):
                await post(http, SEND, {"input": {"receiverId": partner, "text": f"warm-up {n}"}}, token)
            sends = [(token, partner)] * requests
            if new_pairs:
                sends = _seed_sends(await register(http, 2 * new_pairs))
            await asyncio.sleep(1.5)  # start-up work and the warm-up's persisting settle
            profile = cProfile.Profile()
            started = time.process_time()
            profile.enable()
            for n, (sender_token, receiver) in enumerate(sends):
                await post(http, SEND, {"input": {"receiverId": receiver, "text": f"bench message {n}"}}, sender_token)
            await asyncio.sleep(0.5)  # the persister archives them: its share is counted
            profile.disable()
            cpu_s = time.process_time() - started
    calls = sum(entry[1] for entry in pstats.Stats(profile).stats.values())  # type: ignore[attr-defined]
    return {"requests": len(sends), "calls_per_request": round(calls / len(sends)),
            "profiled_cpu_ms_per_request": round(cpu_s / len(sends) * 1000, 3)}, profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--new-pairs", type=int, default=0, help="the seed pattern over this many new pairs instead")
    parser.add_argument("--profile", type=Path, help="save the cProfile here")
    args = parser.parse_args()
    figures, profile = asyncio.run(measure(args.requests, args.new_pairs))
    if args.profile:
        profile.dump_stats(args.profile)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
