"""Authorisation in one place: who may see which message and conversation."""

from __future__ import annotations

from resolvers.errors import InvalidInput, NotFound
from storage.ids import is_valid_id
from storage.records import StoredMessage


def parse_id(value: str, *, field: str) -> str:
    """A well-formed id, or BAD_USER_INPUT naming `field`."""
    if not isinstance(value, str) or not is_valid_id(value):
        raise InvalidInput(f"{field} is not a valid id", field=field)
    return value


def visible_message(viewer_id: str, message: StoredMessage | None, *, field: str = "id") -> StoredMessage:
    """The message if the viewer sent or received it; NOT_FOUND otherwise (whether it
    exists or not, so ids of other people's messages reveal nothing)."""
    if message is None or viewer_id not in (message.sender_id, message.receiver_id):
        raise NotFound("message not found", field=field)
    return message
