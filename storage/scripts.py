"""Several Redis commands in one round-trip, and Lua scripts run that way.

`in_one_round_trip` writes the commands at once on one pooled connection and reads the replies
in order: what redis-py's non-transactional pipeline does, without its per-command bookkeeping
(a Pipeline object, callbacks, option dicts), which cost a round-trip of three commands about
half again a single command's client CPU. Scripts go as plain EVALSHA, without
the SCRIPT EXISTS round-trip redis-py's pipeline sends before every script. A call Redis refused
with NOSCRIPT (it restarted or flushed its scripts) never ran: it runs again through the
`Script`, which loads it.

(A Redis Cluster client has no single pool: moving to one means a cluster pipeline here, which
sends each node its part.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ResponseError

Call = tuple[Sequence[str], Sequence[Any]]  # a script call's keys and args
Command = tuple[Any, ...]  # a command's name and arguments, as Redis takes them


def script_command(script: AsyncScript, call: Call) -> Command:
    """One call of `script` as an EVALSHA command; read its reply with `script_reply`."""
    keys, args = call
    return ("EVALSHA", script.sha, len(keys), *keys, *args)  # type: ignore[attr-defined]  # types-redis: 4.6


async def script_reply(script: AsyncScript, call: Call, reply: Any) -> Any:
    """The reply of a call sent by `script_command`: run again through the `Script` on
    NOSCRIPT; any other error raised."""
    if isinstance(reply, NoScriptError):
        return await script(keys=call[0], args=call[1])
    if isinstance(reply, Exception):
        raise reply
    return reply


async def in_one_round_trip(redis: Redis, commands: Sequence[Command]) -> list[Any]:
    """The replies of `commands` in order, an error reply as its exception (not raised). Only
    for commands that are safe to run twice: a connection that breaks is retried under the
    client's retry policy, as redis-py retries a single command."""
    pool = redis.connection_pool
    connection = await pool.get_connection()
    try:
        replies: list[Any] = await connection.retry.call_with_retry(lambda: _send_and_read(connection, commands),
                                                                    lambda _error: connection.disconnect())
        return replies
    finally:
        await pool.release(connection)


async def run_commands(redis: Redis, commands: Sequence[Command]) -> list[Any]:
    """`in_one_round_trip`, raising the first error reply (for commands that should not fail)."""
    if not commands:
        return []
    replies = await in_one_round_trip(redis, commands)
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


async def _send_and_read(connection: AbstractConnection, commands: Sequence[Command]) -> list[Any]:
    # A cancelled or failed read disconnects the connection (redis-py), so no reply is left for its next user.
    await connection.send_packed_command(connection.pack_commands(commands))
    replies: list[Any] = []
    for _ in commands:
        try:
            replies.append(await connection.read_response())
        except ResponseError as error:  # this command's error reply: the others are still read
            replies.append(error)
    return replies


async def run_pipelined(redis: Redis, script: AsyncScript, calls: Sequence[Call]) -> list[Any]:
    """`script` once per (keys, args), in one round-trip; the replies in order."""
    if not calls:
        return []
    replies = await in_one_round_trip(redis, [script_command(script, call) for call in calls])
    return [await script_reply(script, call, reply) for call, reply in zip(calls, replies, strict=True)]
