"""What one known-partner sendMessage costs the API in Python function calls: a count a busy
machine does not change (cProfile over an in-process app on embedded Redis and MongoDB, requests
one at a time, the outbox persister's share included).

    python -m bench.call_count [--requests N] [--profile FILE]

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
import cProfile
import json
import pstats
import secrets
import tempfile
import time
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


async def _post(http: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = (await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)).json()
    if body.get("errors"):
        raise RuntimeError(f"request failed: {body['errors']}")
    return body["data"]


def _settings(services: Any, workdir: Path) -> Settings:
    base = dict(redis_url=services.redis_url, mongodb_url=services.mongodb_url.rsplit("/", 1)[0] + "/call_count",
                jwt_secret=secrets.token_urlsafe(48), data_dir=workdir / "data", stt_engine="none",
                rate_limits="off", log_level="WARNING")
    try:  # cheap password hashing, where the checkout has the setting
        return Settings(**base, password_hash_time_cost=1, password_hash_memory_kib=1024)
    except Exception:  # noqa: BLE001 - an older checkout without it
        return Settings(**base)


async def measure(requests: int) -> tuple[dict[str, float], cProfile.Profile]:
    workdir = Path(tempfile.mkdtemp(prefix="chattergram-call-count-"))
    with embedded_servers(workdir / "services") as services:
        app = create_app(_settings(services, workdir))
        async with LifespanManager(app, startup_timeout=120) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=60) as http:
                accounts = []
                for _ in range(2):
                    name = f"calls_{secrets.token_hex(4)}"
                    data = await _post(http, REGISTER, {"input": {"username": name, "email": f"{name}@example.com",
                                                                  "password": "call count password 1234"}})
                    accounts.append((data["register"]["user"]["id"], data["register"]["token"]))
                (_, token), (partner, _) = accounts
                for n in range(WARM_UP):
                    await _post(http, SEND, {"input": {"receiverId": partner, "text": f"warm-up {n}"}}, token)
                await asyncio.sleep(1.5)  # start-up work and the warm-up's persisting settle
                profile = cProfile.Profile()
                started = time.process_time()
                profile.enable()
                for n in range(requests):
                    await _post(http, SEND, {"input": {"receiverId": partner, "text": f"bench message {n}"}}, token)
                await asyncio.sleep(0.5)  # the persister archives them: its share is counted
                profile.disable()
                cpu_s = time.process_time() - started
    calls = sum(entry[1] for entry in pstats.Stats(profile).stats.values())  # type: ignore[attr-defined]
    return {"requests": requests, "calls_per_request": round(calls / requests),
            "profiled_cpu_ms_per_request": round(cpu_s / requests * 1000, 3)}, profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--profile", type=Path, help="save the cProfile here")
    args = parser.parse_args()
    figures, profile = asyncio.run(measure(args.requests))
    if args.profile:
        profile.dump_stats(args.profile)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
