"""uvicorn's httptools protocol with a deadline for each request's head (slow-client protection).

uvicorn closes idle keep-alive connections, but a client that opens a connection and then
sends its request line and headers a byte at a time ("slowloris") holds the connection, its
memory and a file descriptor for as long as it likes. Here the head of every request must be
complete within `HTTP_HEADER_TIMEOUT_SECONDS` of the connection opening (or of the previous
response, on a keep-alive connection); otherwise the connection is closed.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.logs import log_refusal


@functools.cache
def header_timeout_seconds() -> float:
    from api.settings import Settings

    return Settings().http_header_timeout_seconds


class HeaderTimeoutProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout_seconds()
        self._head_deadline: asyncio.TimerHandle | None = None
        self._head_started = False  # bytes of the next request arrived (idle connections are not logged)

    def connection_made(  # type: ignore[override]  # narrows asyncio's BaseTransport to Transport, as uvicorn does
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(transport)
        self._arm_head_deadline()

    def on_message_begin(self) -> None:
        self._head_started = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._disarm_head_deadline()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        idle = self.cycle is None or self.cycle.response_complete  # no pipelined request started
        if idle and not self.transport.is_closing():
            self._arm_head_deadline()  # the next request on this connection gets the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        self._disarm_head_deadline()
        self._head_started = False
        self._head_deadline = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            if self._head_started:
                log_refusal(408, f"request head incomplete after {self.header_timeout:g} s: connection closed",
                            client=self.client[0] if self.client else None)
            self.transport.close()
