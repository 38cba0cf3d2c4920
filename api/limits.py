"""Request body limits enforced while the body streams in, before anything buffers it: its
size, and how long the client may leave it unfinished."""

from __future__ import annotations

import asyncio

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    pass


class BodyTooSlow(Exception):
    pass


# After refusing, the rest of a body up to this size is read and thrown away (constant
# memory), so the client — which sends its whole body before reading — gets the 413 instead
# of a connection reset. Larger bodies are cut off.
DRAIN_CAP_BYTES = 32 * 1024 * 1024
DRAIN_TIMEOUT_SECONDS = 10.0


async def _drain(receive: Receive) -> None:
    drained = 0
    try:
        async with asyncio.timeout(DRAIN_TIMEOUT_SECONDS):
            while drained <= DRAIN_CAP_BYTES:
                message = await receive()
                if message["type"] != "http.request":
                    return
                drained += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return
    except TimeoutError:
        return


async def _send_error(send: Send, status: int, message: str, extensions: dict[str, object],
                      *, close: bool = False) -> None:
    """A GraphQL-shaped JSON error response, sent before the app answered."""
    body = orjson.dumps({"data": None, "errors": [{"message": message, "extensions": extensions}]})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """Refuse (413, PAYLOAD_TOO_LARGE) requests whose body is larger than their limit: at
    once when Content-Length says so, otherwise as soon as the streamed body passes it.
    Multipart requests (uploads) get `multipart_limit`, everything else `limit`.

    A body that stops arriving for `idle_timeout_seconds` before it is complete (a client that
    trickles or abandons it) gets 408 and the connection is closed."""

    def __init__(self, app: ASGIApp, *, limit: int, multipart_limit: int, idle_timeout_seconds: float = 30.0) -> None:
        self.app = app
        self.default_limit = limit
        self.multipart_limit = multipart_limit
        self.idle_timeout_seconds = idle_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        multipart = headers.get(b"content-type", b"").lower().startswith(b"multipart/")
        limit = self.multipart_limit if multipart else self.default_limit
        await self._limited(scope, receive, send, headers.get(b"content-length"), limit)

    async def _limited(self, scope: Scope, receive: Receive, send: Send, declared: bytes | None, limit: int) -> None:
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, limit)
            if int(declared) <= DRAIN_CAP_BYTES:
                await _drain(receive)
            return
        received = 0
        started = False
        complete = False

        async def counting_receive() -> Message:
            nonlocal received, complete
            if complete:  # afterwards the app only listens for a disconnect: no deadline
                return await receive()
            try:
                async with asyncio.timeout(self.idle_timeout_seconds):  # no extra task, unlike wait_for
                    message = await receive()
            except TimeoutError:
                raise BodyTooSlow from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
                complete = not message.get("more_body", False)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send, limit)
                await _drain(receive)
        except BodyTooSlow:
            if not started:
                await _send_error(send, 408, f"the request body stalled for {self.idle_timeout_seconds:g} s",
                                  {"code": "BAD_USER_INPUT"}, close=True)

    async def _refuse(self, send: Send, limit: int) -> None:
        await _send_error(send, 413, f"request body exceeds {limit} bytes",
                          {"code": "PAYLOAD_TOO_LARGE", "limitBytes": limit})
