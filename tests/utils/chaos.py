"""Clients that behave as real ones do under failures, recording what they were told, for the
chaos test (tests/api/test_chaos.py): a sender that retries a send with the same clientId on the
next instance until it is acknowledged, and a subscriber that subscribes again after a
RESUBSCRIBE and reconnects (to the next instance) when its WebSocket dies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets

from tests.utils.graphql import Account
from tests.utils.ws import MESSAGE_EVENTS, connect

SEND = """mutation S($input: SendMessageInput!) { sendMessage(input: $input) { id conversationId clientId } }"""
RETRYABLE = {"INTERNAL_SERVER_ERROR"}  # a store was unreachable: the client retries, same clientId


@dataclass(frozen=True)
class Sent:
    """An acknowledged message; `started` is when its first attempt began (its event was
    published after that)."""

    id: str
    conversation_id: str
    client_id: str
    sender_id: str
    receiver_id: str
    started: float


class Unexpected(AssertionError):
    """An answer no failure explains (a wrong error code, a bad reply)."""


async def send_until_acked(http: httpx.AsyncClient, urls: Sequence[str], sender: Account, receiver: Account,
                           text: str, client_id: str, *, first: int = 0, give_up_after: float = 30.0) -> Sent:
    """Send, retrying with the same clientId (on the next instance each time) until acknowledged."""
    started = time.monotonic()
    variables = {"input": {"receiverId": receiver.id, "text": text, "clientId": client_id}}
    attempt = first
    while True:
        url = urls[attempt % len(urls)]
        attempt += 1
        try:
            response = await http.post(url, json={"query": SEND, "variables": variables},
                                       headers={"Authorization": f"Bearer {sender.token}"})
        except httpx.TransportError:
            response = None
        if response is not None and response.status_code == 200:
            body = response.json()
            if not body.get("errors"):
                data = body["data"]["sendMessage"]
                if data["clientId"] != client_id:
                    raise Unexpected(f"acknowledged another clientId: {data}")
                return Sent(data["id"], data["conversationId"], client_id, sender.id, receiver.id, started)
            codes = {e.get("extensions", {}).get("code") for e in body["errors"]}
            if not codes <= RETRYABLE:
                raise Unexpected(f"send {client_id}: {body['errors']}")
        elif response is not None and response.status_code < 500:
            raise Unexpected(f"send {client_id}: HTTP {response.status_code} {response.text[:300]}")
        if time.monotonic() - started > give_up_after:
            raise Unexpected(f"send {client_id} never acknowledged in {give_up_after} s")
        await asyncio.sleep(0.1)


@dataclass
class Epoch:
    """One subscription from its start to its end: `ended_by` is RESUBSCRIBE (the resync
    signal), CLOSED (the WebSocket died with its instance), another error code, or None
    while it is open. `first_event_at`: once it got an event, it was surely listening."""

    url: str
    events: list[str] = field(default_factory=list)  # CREATED message ids, in arrival order
    first_event_at: float | None = None
    ended_by: str | None = None


class Subscriber:
    """A user's `messageEvents`, kept open as a client would through every failure."""

    def __init__(self, user: Account, ws_urls: Sequence[str], first: int) -> None:
        self.user = user
        self.ws_urls = list(ws_urls)
        self.turn = first
        self.epochs: list[Epoch] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"subscriber-{self.user.username}")

    async def stop(self) -> None:
        """Close it; re-raises what ended it early (`Unexpected`)."""
        if self._task is None:
            return
        if not self._task.done():
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def received(self) -> set[str]:
        return {i for epoch in self.epochs for i in epoch.events}

    async def _run(self) -> None:
        while True:
            url = self.ws_urls[self.turn % len(self.ws_urls)]
            try:
                async with connect(url, self.user.token) as socket:
                    while True:  # one epoch per subscription on this socket
                        epoch = Epoch(url)
                        self.epochs.append(epoch)
                        op_id = await socket.subscribe(MESSAGE_EVENTS)
                        await self._listen(socket.ws, op_id, epoch)
                        if epoch.ended_by != "RESUBSCRIBE":
                            return  # recorded; the test fails on it
                        await asyncio.sleep(0.1)
            except Unexpected:
                raise
            except (websockets.ConnectionClosed, OSError, TimeoutError, AssertionError):  # connect's own checks
                if self.epochs and self.epochs[-1].ended_by is None:
                    self.epochs[-1].ended_by = "CLOSED"
                self.turn += 1  # the next instance
                await asyncio.sleep(0.2)

    async def _listen(self, ws: websockets.ClientConnection, op_id: str, epoch: Epoch) -> None:
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            kind = message["type"]
            if kind in ("ka", "ping", "pong"):
                continue
            if message.get("id") != op_id:
                raise Unexpected(f"a message for another operation: {message}")
            if kind == "complete":
                epoch.ended_by = epoch.ended_by or "COMPLETE"
                return
            errors = message["payload"]["errors"] if kind == "error" else message["payload"].get("errors")
            if errors:
                codes = sorted({e.get("extensions", {}).get("code", "?") for e in errors})
                epoch.ended_by = ",".join(codes)
                if kind == "error":
                    return
                continue  # its `complete` follows
            event = message["payload"]["data"]["messageEvents"]
            if event["type"] == "CREATED":
                epoch.first_event_at = epoch.first_event_at or time.monotonic()
                epoch.events.append(event["message"]["id"])
