"""WebSocket sessions: authenticate in connection_init, track presence, expire with the token.

Both subscription protocols go through here. A bad token closes the socket with 4403 before
any operation runs (the legacy `graphql-ws` protocol would close with 1011; we use 4403 for
both). A token that expires while connected closes the socket with 4403 so clients log in
again. A socket that sends no connection_init within WEBSOCKET_INIT_TIMEOUT_SECONDS is closed
with 4408 on both protocols (Strawberry does it for graphql-transport-ws only). Whatever way
the socket ends, its presence entry and timers are released.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.async_base_view import AsyncWebSocketAdapter
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.unset import UnsetType

from api.metrics import LOCAL_CONNECTIONS
from resolvers.context import Context
from resolvers.runtime import Runtime
from resolvers.tokens import bearer_token
from storage.revocations import Revocation

log = logging.getLogger("chattergram.websocket")

CLOSE_FORBIDDEN = 4403
CLOSE_INIT_TIMEOUT = 4408  # graphql-transport-ws's code, used for the legacy protocol too


def token_from_params(params: dict[str, Any] | None) -> str | None:
    """`{"Authorization": "Bearer <t>"}` (any case) or `{"token": "<t>"}`."""
    if not isinstance(params, dict):
        return None
    for key, value in params.items():
        if isinstance(key, str) and key.lower() == "authorization" and isinstance(value, str):
            return bearer_token(value)
    token = params.get("token")
    return token if isinstance(token, str) and token else None


async def open_session(context: Context) -> None:
    """Authenticate the connection, mark the user online, arm the expiry timer."""
    claims = context.authenticate(token_from_params(context.connection_params))
    if claims is None:
        raise ConnectionRejectionError({"code": "UNAUTHENTICATED", "message": "invalid or missing token"})
    if context.session_connection_id is not None:
        raise ConnectionRejectionError({"code": "BAD_USER_INPUT", "message": "already initialised"})
    user = await context.runtime.users.get(claims.user_id)  # its profile rides on the presence events
    if user is None:  # a valid token of an account that no longer exists
        raise ConnectionRejectionError({"code": "UNAUTHENTICATED", "message": "unknown user"})
    try:
        connection_id = await context.runtime.presence.connect(claims.user_id, user)
    finally:  # written as it changes: another worker may answer the scrape
        LOCAL_CONNECTIONS.set(context.runtime.presence.local_connections)
    context.session_connection_id = connection_id
    context.session_user_id = claims.user_id
    delay = (claims.expires_at - datetime.now(UTC)).total_seconds()
    # A timer, not a sleeping task: a few hundred bytes per idle socket instead of a few KB.
    context.session_watchdog = asyncio.get_running_loop().call_later(
        max(delay, 0), _start_closing_expired, context
    )


async def close_session(context: Context) -> None:
    watchdog = context.session_watchdog
    if watchdog is not None:
        context.session_watchdog = None
        watchdog.cancel()
    connection_id, user_id = context.session_connection_id, context.session_user_id
    if connection_id is not None and user_id is not None:
        context.session_connection_id = None
        try:
            await context.runtime.presence.disconnect(user_id, connection_id)
        finally:
            LOCAL_CONNECTIONS.set(context.runtime.presence.local_connections)


_closing: set[asyncio.Task[None]] = set()  # strong references until each close is done


def _spawn_close(close: Coroutine[Any, Any, None]) -> None:
    task = asyncio.create_task(close)
    _closing.add(task)
    task.add_done_callback(_closing.discard)


def _start_closing_expired(context: Context) -> None:
    context.session_watchdog = None
    _spawn_close(_close_expired(context))


async def _close_expired(context: Context) -> None:
    log.info("closing WebSocket: token expired", extra={"user": context.viewer_id})
    with contextlib.suppress(Exception):
        await context.request.close(code=CLOSE_FORBIDDEN, reason="Token expired")


RECANCEL_SECONDS = 0.05


def cancel_until_done(task: asyncio.Task[Any]) -> None:
    """Cancel `task`, and again every RECANCEL_SECONDS while it runs: on Python 3.11
    asyncio.wait_for (redis-py awaits every socket write through it) swallows a cancel that
    lands as the write completes, and the operation would then wait for events forever."""
    if not task.done():
        task.cancel()
        asyncio.get_running_loop().call_later(RECANCEL_SECONDS, cancel_until_done, task)


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    async def handle(self) -> None:
        try:
            await super().handle()
        finally:
            await close_session(self.context)

    async def shutdown(self) -> None:
        # The session first: waiting for the operations must never keep the user online.
        await close_session(self.context)
        await super().shutdown()

    async def cleanup_operation(self, operation_id: str) -> None:
        operation = self.operations.get(operation_id)
        await super().cleanup_operation(operation_id)
        if operation is not None and operation.task is not None:
            cancel_until_done(operation.task)


async def _close_uninitialised(websocket: AsyncWebSocketAdapter) -> None:
    with contextlib.suppress(Exception):  # the client may be gone already
        await websocket.close(code=CLOSE_INIT_TIMEOUT, reason="Connection initialisation timeout")


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    connection_init_received = False
    _init_timer: asyncio.TimerHandle | None = None

    async def handle(self) -> None:
        delay = self.view.connection_init_wait_timeout.total_seconds()
        # A timer, not a sleeping task, as for the token watchdog: cheap per idle socket.
        self._init_timer = asyncio.get_running_loop().call_later(delay, self._init_timed_out)
        try:
            await super().handle()
        finally:
            self._init_timer.cancel()
            await close_session(self.context)

    async def cleanup(self) -> None:
        # The session first: waiting for the operations must never keep the user online.
        await close_session(self.context)
        await super().cleanup()

    async def cleanup_operation(self, operation_id: str) -> None:
        task = self.tasks.get(operation_id)
        if task is not None:
            cancel_until_done(task)
        await super().cleanup_operation(operation_id)

    def _init_timed_out(self) -> None:
        if not self.connection_init_received:
            _spawn_close(_close_uninitialised(self.websocket))

    async def handle_connection_init(self, message: Any) -> None:
        self.connection_init_received = True
        if self._init_timer is not None:
            self._init_timer.cancel()
        if self.connection_acknowledged:  # as graphql-transport-ws does: 4429, never a second session
            await self.websocket.close(code=4429, reason="Too many initialisation requests")
            return
        payload = message.get("payload")
        self.context.connection_params = payload if isinstance(payload, dict) else None
        try:
            ack = await self.view.on_ws_connect(self.context)
        except ConnectionRejectionError as exc:
            await self.send_message({"type": "connection_error", "payload": exc.payload})
            await self.websocket.close(code=CLOSE_FORBIDDEN, reason="Forbidden")
            return
        if isinstance(ack, UnsetType) or ack is None:
            await self.send_message({"type": "connection_ack"})
        else:
            await self.send_message({"type": "connection_ack", "payload": ack})
        self.connection_acknowledged = True
        if self.keep_alive:
            self.keep_alive_task = asyncio.create_task(self.handle_keep_alive())


# Revocation (logout, logoutEverywhere, changePassword): a revoked token's sockets close with
# 4403 on every instance. Each instance hears every revocation on one pub/sub channel
# (storage/revocations.py) and closes the matching sockets it holds (runtime.sessions).


async def refuse_revoked(context: Context) -> None:
    """Before a session opens: a revoked token is refused like a bad one (4403)."""
    context.authenticate(token_from_params(context.connection_params))
    if context.claims is not None and await context.check_revocation() is None:
        raise ConnectionRejectionError({"code": "UNAUTHENTICATED", "message": "token revoked"})


def track_revocable(context: Context) -> None:
    """After a session opened: remember it for revocations (a weak reference: it leaves by
    itself), and close it now if a revocation arrived while it was opening."""
    claims = context.claims
    if claims is None or context.session_connection_id is None:
        return
    context.runtime.sessions.add(claims.user_id, context)
    if context.runtime.revocations.known_revoked(claims.user_id, claims.token_id, claims.generation):
        _spawn_close(_close_revoked(context))


def close_revoked_sessions(runtime: Runtime, notice: Revocation) -> int:
    """Close this instance's open sockets whose token `notice` revokes; how many."""
    closed = 0
    for context in runtime.sessions.of(notice.user_id):
        claims = context.claims
        if context.session_connection_id is not None and claims is not None \
                and notice.covers(claims.user_id, claims.token_id, claims.generation):
            _spawn_close(_close_revoked(context))
            closed += 1
    return closed


async def watch_revocations(runtime: Runtime) -> None:
    """Runs for the process's lifetime: closes sockets as revocations are announced."""
    async for notice in runtime.revocations.notices():
        try:
            close_revoked_sessions(runtime, notice)
        except Exception:  # one bad notice must not stop the watcher
            log.exception("closing revoked sessions failed")


async def _close_revoked(context: Context) -> None:
    log.info("closing WebSocket: token revoked", extra={"user": context.viewer_id})
    with contextlib.suppress(Exception):
        await context.request.close(code=CLOSE_FORBIDDEN, reason="Token revoked")
