"""Paging: opaque cursors (base64url of `<kind>:<position>`, validated on the way in) and pages."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Generic, TypeVar

from resolvers.errors import InvalidInput

T = TypeVar("T")

MAX_CURSOR_LENGTH = 200


def encode_cursor(kind: str, position: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, *, field: str) -> str:
    """The position inside a cursor of `kind`, or BAD_USER_INPUT naming `field`."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidInput("Malformed cursor", field=field)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("Malformed cursor", field=field) from None
    found_kind, sep, position = raw.partition(":")
    if not sep or found_kind != kind or not position:
        raise InvalidInput("Malformed cursor", field=field)
    return position


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list: its items with their cursors, and whether more lie either side."""

    items: list[T]
    cursors: list[str]
    has_previous_page: bool
    has_next_page: bool
