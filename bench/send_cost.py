"""What one sendMessage costs the API, counted instead of timed (so a busy machine does not
change the answer): Redis round-trips and commands, MongoDB commands, and the process's CPU
time, for the first send of a new pair (which makes their DIRECT conversation), the first send
to a new partner of a sender the process knows, a send to a known partner, and on average over
the benchmark's seed scenario (new users, N messages each to one partner; one process here).

    .venv/bin/python -m bench.send_cost [--pairs 200] [--seed-users 200 --per-user 10] [--json out.json]

The app runs in this process (`create_app` and its lifespan, driven through httpx's ASGI
transport) on embedded Redis and MongoDB-wire servers, with the benchmark's settings
(RATE_LIMITS=off, STT_ENGINE=none, LOG_LEVEL=WARNING). Only what the request's own task (and
tasks it starts) sends is counted: background workers (the outbox persister...) are not. The
CPU figure is the whole process's per send (client and background work included), sends one
at a time: compare it between versions, not with the load benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.call_count import SEND, in_process_app, post, register


@dataclass
class Tally:
    """What one request sent: each Redis round-trip as its command names, MongoDB commands.
    Opening a connection (HELLO, CLIENT SETINFO...; MongoDB's handshake) is left out."""

    round_trips: list[list[str]] = field(default_factory=list)
    callers: list[str] = field(default_factory=list)  # the app's frame that sent each round-trip
    pending: list[str] = field(default_factory=list)  # commands packed, not yet sent
    mongo: list[str] = field(default_factory=list)


_TALLY: contextvars.ContextVar[Tally | None] = contextvars.ContextVar("send_cost_tally", default=None)
_REDIS_CONNECTING = {"HELLO", "CLIENT", "AUTH", "SELECT", "READONLY"}
_MONGO_CONNECTING = {"hello", "ismaster", "isMaster", "saslStart", "saslContinue", "endSessions"}


def _mongo_command(message: bytes) -> str:
    """The command of an OP_MSG (header, flags, a kind-0 section: its document's first key)."""
    import bson

    try:
        size = int.from_bytes(message[21:25], "little")
        return next(iter(bson.decode(message[21:21 + size])))
    except Exception:  # noqa: BLE001 - another opcode (compressed...): still one command
        return "?"


@contextlib.contextmanager
def counters_installed() -> Iterator[None]:
    """Count what `counting()` blocks send, through the app's Redis connections (one write = one
    round-trip; commands as storage.connections packs them) and pymongo's (one message = one
    command); undone on exit."""
    from pymongo.asynchronous.pool import AsyncConnection
    from redis.asyncio.connection import AbstractConnection

    from storage.connections import PackedByHiredis

    pack, send, mongo_send = (PackedByHiredis.pack_command, AbstractConnection.send_packed_command,
                              AsyncConnection.send_message)

    def pack_command(self: Any, *args: Any) -> Any:
        if (tally := _TALLY.get()) is not None:
            name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
            tally.pending.append(name.upper())
        return pack(self, *args)

    async def send_packed_command(self: Any, command: Any, check_health: bool = True) -> None:
        if (tally := _TALLY.get()) is not None:
            if tally.pending and tally.pending[0] not in _REDIS_CONNECTING:
                tally.round_trips.append(tally.pending)
                tally.callers.append(_app_caller())
            tally.pending = []
        await send(self, command, check_health)

    async def send_message(self: Any, message: bytes, max_doc_size: int) -> None:
        if (tally := _TALLY.get()) is not None and (name := _mongo_command(message)) not in _MONGO_CONNECTING:
            tally.mongo.append(name)
        await mongo_send(self, message, max_doc_size)

    PackedByHiredis.pack_command = pack_command  # type: ignore[method-assign]
    AbstractConnection.send_packed_command = send_packed_command  # type: ignore[method-assign]
    AsyncConnection.send_message = send_message  # type: ignore[method-assign]
    try:
        yield
    finally:
        PackedByHiredis.pack_command = pack  # type: ignore[method-assign]
        AbstractConnection.send_packed_command = send  # type: ignore[method-assign]
        AsyncConnection.send_message = mongo_send  # type: ignore[method-assign]


def _app_caller() -> str:
    """The innermost frame of the app's own code (storage/, resolvers/, api/) on the stack."""
    frame: Any = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename
        if any(f"/{package}/" in path for package in ("storage", "resolvers", "api")) and "site-packages" not in path:
            return f"{Path(path).parent.name}/{Path(path).name}:{frame.f_lineno} {frame.f_code.co_name}"
        frame = frame.f_back
    return "?"


@contextlib.contextmanager
def counting() -> Iterator[Tally]:
    tally = Tally()
    token = _TALLY.set(tally)
    try:
        yield tally
    finally:
        _TALLY.reset(token)


@dataclass
class Case:
    """Totals over the sends of one kind."""

    sends: int = 0
    round_trips: int = 0
    commands: int = 0
    mongo: int = 0
    cpu_s: float = 0.0
    shapes: Counter[str] = field(default_factory=Counter)  # "CMD+CMD | CMD" -> sends with it
    example: list[str] = field(default_factory=list)  # the last send's round-trips and their callers

    def add(self, tally: Tally, cpu_s: float) -> None:
        self.sends += 1
        self.round_trips += len(tally.round_trips)
        self.commands += sum(len(rt) for rt in tally.round_trips)
        self.mongo += len(tally.mongo)
        self.cpu_s += cpu_s
        shape = " | ".join("+".join(rt) for rt in tally.round_trips)
        if tally.mongo:
            shape += " || mongo: " + "+".join(tally.mongo)
        self.shapes[shape] += 1
        self.example = [f"{'+'.join(rt)} <- {caller}" for rt, caller in zip(tally.round_trips, tally.callers,
                                                                            strict=True)]

    def summary(self) -> dict:
        n = self.sends or 1
        return {"sends": self.sends, "redis_round_trips": round(self.round_trips / n, 2),
                "redis_commands": round(self.commands / n, 2), "mongo_commands": round(self.mongo / n, 2),
                "cpu_ms": round(1000 * self.cpu_s / n, 3),
                "shapes": [[shape, count] for shape, count in self.shapes.most_common(4)], "example": self.example}


async def _send(http: httpx.AsyncClient, case: Case, token: str, receiver_id: str, n: int) -> None:
    variables = {"input": {"receiverId": receiver_id, "text": f"send cost message {n}"}}
    started = time.process_time()
    with counting() as tally:
        await post(http, SEND, variables, token)
    case.add(tally, time.process_time() - started)


async def measure(pairs: int, seed_users: int, per_user: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="chattergram-send-cost-") as tmp, counters_installed():
        async with in_process_app(Path(tmp)) as http:
            # Users a..: pairs (2k, 2k+1); then user 2k also writes to 2k+2 (a new partner, both known).
            users = await register(http, 2 * pairs + 1)
            await asyncio.sleep(1)  # let start-up work settle
            first, new_partner, known = Case(), Case(), Case()
            for k in range(pairs):
                await _send(http, first, users[2 * k][1], users[2 * k + 1][0], k)
            for k in range(pairs):
                await _send(http, new_partner, users[2 * k][1], users[2 * k + 2][0], k)
            for round_ in range(3):
                for k in range(pairs):
                    await _send(http, known, users[2 * k][1], users[2 * k + 1][0], round_)
            # The benchmark's seed scenario, one request at a time: new users, each sending
            # `per_user` messages to its partner (2k and 2k+1), round-robin over the users.
            seed = Case()
            seed_accounts = await register(http, seed_users)
            for round_ in range(per_user):
                for i, (_, token) in enumerate(seed_accounts):
                    await _send(http, seed, token, seed_accounts[i ^ 1 if (i ^ 1) < seed_users else i][0], round_)
    return {"pairs": pairs, "first_send_of_new_users": first.summary(),
            "first_send_to_new_partner": new_partner.summary(), "send_to_known_partner": known.summary(),
            f"seed_{seed_users}_users_x_{per_user}": seed.summary()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--seed-users", type=int, default=200, help="users of the seed scenario (in pairs)")
    parser.add_argument("--per-user", type=int, default=10, help="messages each of them sends")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    result = asyncio.run(measure(args.pairs, args.seed_users, args.per_user))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
