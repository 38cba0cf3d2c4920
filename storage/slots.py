"""Hash tags that keep every atomic Redis operation inside one Redis Cluster hash slot.

Redis Cluster runs a Lua script, MULTI or multi-key command only when all its keys hash to one
slot; the part of a key between `{` and `}` (its hash tag) is all that is hashed. Keys that one
script touches together therefore share a tag:
- `{p<n>}` (n < PARTITIONS): a partition of conversation ids. A conversation's keys (members,
  message ids, read markers, typing state), its messages' documents and its members' entries in
  their conversation lists live in its partition, with the keys that many conversations share
  and a worker reads as a whole (the outbox and transcription streams, the hot-window index):
  so the send script writes the document, the outbox entry, the indexes and every member's
  list in one slot. Presence partitions user ids the same way (the online-user sets).
- `{u:<user id>}`: a user's own state (token generation, blocks, mutes, clientId reservations).
"""

from __future__ import annotations

import zlib

PARTITIONS = 16  # changing it re-homes every partitioned key: a migration, not a setting


def partition_of(entity_id: str) -> int:
    """The partition of a conversation or user id: stable across processes and releases."""
    return zlib.crc32(entity_id.encode()) % PARTITIONS


_PARTITION_TAGS = tuple(f"{{p{partition}}}" for partition in range(PARTITIONS))


def partition_tag(partition: int) -> str:
    return _PARTITION_TAGS[partition]


def user_tag(user_id: str) -> str:
    return f"{{u:{user_id}}}"
