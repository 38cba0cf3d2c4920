"""Lua scripts run in a pipeline: plain EVALSHA, without the SCRIPT EXISTS round-trip redis-py
sends before executing every pipeline that holds a registered `Script`. A call Redis refused
with NOSCRIPT (it restarted or flushed its scripts) never ran: it runs again through the
`Script`, which loads it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

Call = tuple[Sequence[str], Sequence[Any]]  # a script call's keys and args


def queue_script(pipe: Pipeline, script: AsyncScript, call: Call) -> None:
    """Queue one call of `script` in `pipe`; read its reply with `script_reply`."""
    keys, args = call
    pipe.evalsha(script.sha, len(keys), *keys, *args)  # type: ignore[attr-defined]  # types-redis: 4.6


async def script_reply(script: AsyncScript, call: Call, reply: Any) -> Any:
    """The reply of a call queued by `queue_script` (the pipeline executed with
    raise_on_error=False): run again through the `Script` on NOSCRIPT; any other error raised."""
    if isinstance(reply, NoScriptError):
        return await script(keys=call[0], args=call[1])
    if isinstance(reply, Exception):
        raise reply
    return reply


async def run_pipelined(redis: Redis, script: AsyncScript, calls: Sequence[Call]) -> list[Any]:
    """`script` once per (keys, args), in one round-trip; the replies in order."""
    if not calls:
        return []
    async with redis.pipeline(transaction=False) as pipe:  # each call is atomic on its own
        for call in calls:
            queue_script(pipe, script, call)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
    return [await script_reply(script, call, reply) for call, reply in zip(calls, replies, strict=True)]
