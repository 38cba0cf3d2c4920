"""Opaque pagination cursors: base64url of `<kind>:<position>`, validated on the way in."""

from __future__ import annotations

import base64
import binascii

from collections.abc import Sequence
from typing import Any

from resolvers.errors import InvalidInput
from schema.types import PageInfo

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


def page_info(edges: Sequence[Any], *, has_previous_page: bool, has_next_page: bool) -> PageInfo:
    """Relay page info for a page of edges (each with a `cursor`)."""
    return PageInfo(
        has_previous_page=has_previous_page,
        has_next_page=has_next_page,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )
