"""A raw graphql-transport-ws / graphql-ws client for protocol-level tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
import websockets

MESSAGE_EVENTS = """subscription { messageEvents { type message { id text kind senderId receiverId clientId
  sender { id username } receiver { id username } } } }"""
PRESENCE = "subscription { presence { online at user { id username online } } }"


class Socket:
    def __init__(self, ws: websockets.ClientConnection, protocol: str) -> None:
        self.ws = ws
        self.protocol = protocol
        self._next_id = 0

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        self._next_id += 1
        op_id = str(self._next_id)
        kind = "subscribe" if self.protocol == "graphql-transport-ws" else "start"
        payload = {"query": query, "variables": variables or {}}
        await self.ws.send(json.dumps({"id": op_id, "type": kind, "payload": payload}))
        return op_id

    async def complete(self, op_id: str) -> None:
        kind = "complete" if self.protocol == "graphql-transport-ws" else "stop"
        await self.ws.send(json.dumps({"id": op_id, "type": kind}))

    async def next_payload(self, timeout: float = 10.0) -> dict[str, Any]:
        """The payload of the next data message (skipping keep-alives)."""
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message["type"] in ("next", "data"):
                return message["payload"]
            if message["type"] in ("ka", "ping", "pong"):
                continue
            raise AssertionError(f"unexpected message {message}")

    async def next_message(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next protocol message other than a keep-alive, whatever its type."""
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message["type"] not in ("ka", "ping", "pong"):
                return dict(message)

    async def expect_silence(self, seconds: float = 0.5) -> None:
        with contextlib.suppress(TimeoutError):
            message = await asyncio.wait_for(self.ws.recv(), seconds)
            raise AssertionError(f"expected nothing, got {message}")


@contextlib.asynccontextmanager
async def connect(url: str, token: str | None, *, protocol: str = "graphql-transport-ws",
                  payload: dict[str, Any] | None = None, origin: str | None = None) -> AsyncIterator[Socket]:
    async with websockets.connect(url, subprotocols=[protocol], origin=origin) as ws:  # type: ignore[list-item,arg-type]  # str for its Subprotocol and Origin NewTypes
        init = payload if payload is not None else ({"Authorization": f"Bearer {token}"} if token else {})
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert ack["type"] == "connection_ack", ack
        yield Socket(ws, protocol)


async def wait_for_subscribers(redis_url: str, channel: str, count: int = 1, timeout: float = 10.0) -> None:
    """Until `count` instances listen on `channel` (no event can be missed after that)."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            [(_, listening)] = await client.pubsub_numsub(channel)
            if listening >= count:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{channel}: {listening} subscribers, expected {count}")
            await asyncio.sleep(0.02)
    finally:
        await client.aclose()


def user_channel(user_id: str) -> str:
    return f"cg:events:user:{user_id}"


PRESENCE_CHANNEL = "cg:events:presence"
