"""Structured logging: one JSON object per line (or plain text for humans), every line of a
request carrying its request id; HTTP-level refusals logged one line each."""

from __future__ import annotations

import contextvars
import logging
import re
import secrets
import sys
from datetime import UTC, datetime

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
"""The id of the HTTP request or WebSocket connection being served (None outside one)."""

REQUEST_ID_HEADER = b"x-request-id"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
REFUSALS = frozenset({405, 408, 413, 429, 431})
"""Statuses that mean the edge turned a request away (logged once each, see RequestContext)."""

access_log = logging.getLogger("chattergram.http")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_") and key != "color_message":
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record logged while serving it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (current := request_id.get()) is not None and not hasattr(record, "request_id"):
            record.request_id = current
        return True


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Our per-request line replaces uvicorn's access log; strawberry's error log is ours too.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("strawberry.execution").disabled = True


def sane_request_id(value: str | None) -> str:
    """The client's X-Request-ID when it is at most 64 of [A-Za-z0-9._-] (safe to log and echo
    as it is), else a new random one."""
    if value is not None and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return secrets.token_hex(16)


def log_refusal(status: int, reason: str, *, method: str = "", path: str = "", client: str | None = None) -> None:
    """One line for a request the edge turned away (also for refusals made below the ASGI app,
    e.g. by the HTTP protocol)."""
    access_log.info("request refused", extra={
        "status": status, "reason": reason, "method": method, "path": path, "client": client,
    })


class RequestContext:
    """Outermost middleware: gives every HTTP request and WebSocket connection a request id
    (the client's `X-Request-ID` if sane, else a new one), set for everything logged while it
    is served and echoed in the `X-Request-ID` response header; logs refusals (REFUSALS) and
    requests their client abandoned before they were read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = next((v for n, v in scope["headers"] if n == REQUEST_ID_HEADER), None)
        rid = sane_request_id(given.decode("latin-1") if given is not None else None)
        header = (REQUEST_ID_HEADER, rid.encode())

        async def send_with_id(message: Message) -> None:
            kind = message["type"]
            if kind in ("http.response.start", "websocket.accept", "websocket.http.response.start"):
                message = {**message, "headers": [*message.get("headers", []), header]}
                if message.get("status") in REFUSALS:
                    client = scope.get("client")
                    log_refusal(message["status"], _REASONS.get(message["status"], "refused"),
                                method=scope.get("method", "GET"), path=scope["path"],
                                client=client[0] if client else None)
            await send(message)

        token = request_id.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:  # it gave up (e.g. timed out while we were busy): no one to answer
            access_log.info("client left before its request was read",
                            extra={"method": scope.get("method"), "path": scope["path"]})
        # Not in a `finally`: when the app raises, the server logs the exception next, in this same
        # task (uvicorn serves each request and WebSocket in a task of its own), and that line
        # carries the id too.
        request_id.reset(token)


_REASONS = {
    405: "method not allowed",
    408: "request body too slow",
    413: "request body too large",
    429: "too many requests",
    431: "request headers too large",
}
