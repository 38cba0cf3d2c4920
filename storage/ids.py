"""Identifiers: ULIDs (26 Crockford base32 characters), sortable by creation time."""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import re
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RFC4648_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())
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
    # the standard library's base32 (10 bits a step, from a table): the 128-bit value after two
    # zero bits (26 characters of 5 bits) at the top of 20 bytes, RFC 4648's alphabet mapped to Crockford's
    return base64.b32encode((value << 30).to_bytes(20, "big"))[:26].translate(_RFC4648_TO_CROCKFORD).decode()


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


@functools.lru_cache(maxsize=16_384)  # every 1:1 send derives it: a hash and an encoding, ~12 µs
def direct_conversation_id(a: str, b: str) -> str:
    """The one DIRECT conversation of users `a` and `b` (a == b: notes to self), the same from
    both sides and on every instance, so two first messages sent at once cannot make two. A ULID
    in shape: the later user's creation time, then 80 bits of a hash of the pair."""
    low, high = sorted((a, b))
    digest = int.from_bytes(hashlib.blake2b(f"direct:{low}:{high}".encode(), digest_size=10).digest(), "big")
    return _encode((id_timestamp_ms(high) << 80) | digest)
