"""Errors a client may see; each carries its `extensions.code` (see the API contract)."""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    code = "BAD_USER_INPUT"

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = extensions


class InvalidInput(ClientError):
    """Bad input; `field` names the offending input field."""

    code = "BAD_USER_INPUT"

    def __init__(self, message: str, *, field: str | None = None, **extensions: Any) -> None:
        if field is not None:
            extensions["field"] = field
        super().__init__(message, **extensions)


class NotAuthenticated(ClientError):
    code = "UNAUTHENTICATED"


class Forbidden(ClientError):
    code = "FORBIDDEN"


class NotFound(ClientError):
    code = "NOT_FOUND"


class Conflict(ClientError):
    code = "CONFLICT"


class RateLimited(ClientError):
    code = "RATE_LIMITED"


class PayloadTooLarge(ClientError):
    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(ClientError):
    code = "UNSUPPORTED_MEDIA_TYPE"


class Resubscribe(ClientError):
    """A subscription ended and events meant for it may be lost (the instance's Redis pub/sub
    connection dropped, or the subscriber fell too far behind): subscribe again, then refetch
    what is shown. `extensions.reason` says which: `CONNECTION_LOST` or `SUBSCRIBER_TOO_SLOW`."""

    code = "RESUBSCRIBE"
