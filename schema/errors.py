"""The one place where exceptions become GraphQL errors with `extensions.code`.

Client errors keep their message and code. GraphQL syntax, validation and variable errors
are the client's too (BAD_USER_INPUT). A subscription the pub/sub hub interrupted (its events
may be lost) ends with RESUBSCRIBE, `extensions.reason` saying why. Anything else is masked
as INTERNAL_SERVER_ERROR with an error id; the full exception is logged under that id and
never reaches the client.
"""

from __future__ import annotations

import logging
import uuid

from graphql import GraphQLError

from resolvers.errors import ClientError, Resubscribe
from storage.pubsub import SubscriberTooSlow, SubscriptionInterrupted

log = logging.getLogger("chattergram.errors")

INTERNAL_MESSAGE = "Internal server error"
CONNECTION_LOST_MESSAGE = "Live events were interrupted and some may be lost: subscribe again, then refetch"
TOO_SLOW_MESSAGE = "Live events came faster than they were read and some were dropped: subscribe again, then refetch"


def _resubscribe(interrupted: SubscriptionInterrupted) -> Resubscribe:
    message = TOO_SLOW_MESSAGE if isinstance(interrupted, SubscriberTooSlow) else CONNECTION_LOST_MESSAGE
    return Resubscribe(message, reason=interrupted.reason)


def translate_error(error: GraphQLError, operation_name: str | None = None) -> None:
    """Rewrite `error` in place into what the client may see."""
    original = error.original_error
    # Strawberry wraps some resolver errors; unwrap to the root cause.
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    if isinstance(original, SubscriptionInterrupted):
        original = _resubscribe(original)
    if isinstance(original, ClientError):
        error.message = original.message
        error.extensions = {"code": original.code, **original.extensions}
    elif original is None or isinstance(original, GraphQLError):
        extensions = dict(error.extensions or {})
        extensions.setdefault("code", "BAD_USER_INPUT")
        error.extensions = extensions
    else:
        error_id = uuid.uuid4().hex[:16]
        log.error(
            "unexpected error in %s (error id %s)",
            operation_name or "anonymous operation",
            error_id,
            exc_info=original,
            extra={"error_id": error_id, "operation": operation_name},
        )
        error.message = f"{INTERNAL_MESSAGE} (error id {error_id})"
        error.extensions = {"code": "INTERNAL_SERVER_ERROR", "errorId": error_id}
    error.original_error = None
    error.__cause__ = None
    error.__traceback__ = None
