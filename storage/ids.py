"""Identifiers: ULIDs (26 Crockford base32 characters), sortable by creation time."""

from __future__ import annotations

import hashlib
import os
import re
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ID_PATTERN = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")


_last_value = 0


def new_id(now_ms: int | None = None) -> str:
    """A new ULID: 48 bits of milliseconds then 80 random bits.

    Monotonic within this process: an id made in the same millisecond as the previous one
    (or while the clock steps back) is the previous one plus one, so ids keep send order.
    """
    global _last_value
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    if now_ms is None and value >> 80 <= _last_value >> 80:
        value = _last_value + 1
    if now_ms is None:
        _last_value = value
    return _encode(value)


def _encode(value: int) -> str:
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def is_valid_id(value: str) -> bool:
    return bool(_ID_PATTERN.match(value))


def id_timestamp_ms(value: str) -> int:
    """Milliseconds since the epoch encoded in a ULID's first 10 characters."""
    ms = 0
    for char in value[:10]:
        ms = ms * 32 + _ALPHABET.index(char)
    return ms


def first_id_at(ms: int) -> str:
    """The smallest ULID of millisecond `ms`: every id made at or after `ms` sorts >= it."""
    return _encode(ms << 80)


def direct_conversation_id(a: str, b: str) -> str:
    """The one DIRECT conversation of users `a` and `b` (a == b: notes to self), the same from
    both sides and on every instance, so two first messages sent at once cannot make two. A ULID
    in shape: the later user's creation time, then 80 bits of a hash of the pair."""
    low, high = sorted((a, b))
    digest = int.from_bytes(hashlib.blake2b(f"direct:{low}:{high}".encode(), digest_size=10).digest(), "big")
    return _encode((id_timestamp_ms(high) << 80) | digest)
