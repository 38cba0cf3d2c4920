"""Lua scripts run many at once: one pipeline of EVALSHA, without the SCRIPT EXISTS round-trip
redis-py sends before executing every pipeline that holds a registered `Script`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

Call = tuple[Sequence[str], Sequence[Any]]  # a script call's keys and args


async def run_pipelined(redis: Redis, script: AsyncScript, calls: Sequence[Call]) -> list[Any]:
    """`script` once per (keys, args), in one round-trip; the replies in order. A call Redis
    refused with NOSCRIPT (it restarted or flushed its scripts) never ran: it runs again
    through the `Script`, which loads it. Any other error is raised."""
    if not calls:
        return []
    async with redis.pipeline(transaction=False) as pipe:  # each call is atomic on its own
        for keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)  # type: ignore[attr-defined]  # types-redis: 4.6
        replies: list[Any] = await pipe.execute(raise_on_error=False)
    for n, (call, reply) in enumerate(zip(calls, replies, strict=True)):
        if isinstance(reply, NoScriptError):
            replies[n] = await script(keys=call[0], args=call[1])
        elif isinstance(reply, Exception):
            raise reply
    return replies
