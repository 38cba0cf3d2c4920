"""uvicorn's httptools protocol with a deadline and a size bound for each request's head.

uvicorn closes idle keep-alive connections, but a client that opens a connection and then
sends its request line and headers a byte at a time ("slowloris") holds the connection, its
memory and a file descriptor for as long as it likes. Here the head of every request must be
complete within `HTTP_HEADER_TIMEOUT_SECONDS` of the connection opening (or of the previous
response, on a keep-alive connection); otherwise the connection is closed.

Neither httptools (llhttp) nor uvicorn bounds a head's size: a client could send megabytes of
headers, all buffered (h11 has a 16 KiB default; httptools, our parser, nothing). Here a head
of more than `HTTP_MAX_HEADER_BYTES` (request line and headers) or more than `HTTP_MAX_HEADERS`
header lines gets 431 and the connection is closed. Completed headers are counted exactly as
the parser reports them; bytes of a head still incomplete after a read count too, so a head
that never ends is refused as soon as it passes the bound instead of being buffered.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.logs import log_refusal

REFUSED_CLOSE_GRACE_SECONDS = 1.0  # read (and drop) what the client still sends, so it gets the 431, not a reset


@functools.cache
def head_limits() -> tuple[float, int, int]:
    """(HTTP_HEADER_TIMEOUT_SECONDS, HTTP_MAX_HEADER_BYTES, HTTP_MAX_HEADERS): read once per process."""
    from api.settings import Settings

    settings = Settings()
    return settings.http_header_timeout_seconds, settings.http_max_header_bytes, settings.http_max_headers


class HeadTooLarge(Exception):
    """Raised inside a parser callback: stops parsing; `send_400_response` then answers 431."""


class HeaderTimeoutProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout, self.max_head_bytes, self.max_headers = head_limits()
        self._head_deadline: asyncio.TimerHandle | None = None
        self._head_pending = True  # a request head has started (or may start) and is not complete
        self._boundaries = 0  # heads and messages completed on this connection
        self._head_bytes = 0  # bytes of the pending head, counted from whole reads
        self._head_counted = 0  # bytes of its request line and completed headers
        self._header_lines = 0
        self._head_refused = False
        self._head_started = False  # bytes of the next request arrived (idle connections are not logged)

    def connection_made(  # type: ignore[override]  # narrows asyncio's BaseTransport to Transport, as uvicorn does
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(transport)
        self._arm_head_deadline()

    def data_received(self, data: bytes) -> None:
        if self._head_refused:
            return  # dropped until the connection closes
        pending_before, boundaries_before = self._head_pending, self._boundaries
        super().data_received(data)
        if pending_before and self._head_pending and self._boundaries == boundaries_before and not self._head_refused:
            # The whole read belongs to a head that is still incomplete (a partial header the
            # parser buffers): counted, so a head that never ends cannot grow without bound. A
            # read in which a head or message ended also holds a body: its head was counted by
            # the callbacks, line by line.
            self._head_bytes += len(data)
            if max(self._head_bytes, self._head_counted) > self.max_head_bytes:
                self._refuse_head()

    def on_message_begin(self) -> None:
        self._head_started = True
        super().on_message_begin()
        self._head_pending = True
        self._head_counted += 16  # method, spaces, version, CRLFs

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_lines += 1
        self._count_head(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_head_deadline()
        self._head_pending = False
        self._boundaries += 1
        self._head_bytes = self._head_counted = self._header_lines = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_pending = True  # what arrives next on this connection is the next head
        self._boundaries += 1

    def send_400_response(self, msg: str) -> None:
        if self._head_refused:  # the parser stopped because a callback raised HeadTooLarge
            self._send_431()
        else:
            super().send_400_response(msg)

    def _count_head(self, size: int) -> None:
        self._head_counted += size
        if self._head_counted > self.max_head_bytes or self._header_lines > self.max_headers:
            self._head_refused = True
            raise HeadTooLarge

    def _refuse_head(self) -> None:
        self._head_refused = True
        self._send_431()

    def _send_431(self) -> None:
        self._disarm_head_deadline()
        log_refusal(431, f"request head over {self.max_head_bytes} bytes or {self.max_headers} header lines",
                    client=self.client[0] if self.client else None)
        body = (f"request head too large: at most {self.max_head_bytes} bytes and "
                f"{self.max_headers} header lines\n").encode()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body
        )
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(REFUSED_CLOSE_GRACE_SECONDS, self.transport.close)

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
