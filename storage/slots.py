"""Hash tags that keep every atomic Redis operation inside one Redis Cluster hash slot.

Redis Cluster runs a Lua script, MULTI or multi-key command only when all its keys hash to one
slot; the part of a key between `{` and `}` (its hash tag) is all that is hashed. Keys that one
script touches together therefore share a tag:
- `{c:<conversation id>}`: a conversation's members, message ids, read markers, typing state;
- `{u:<user id>}`: a user's conversation list and other per-user state;
- `{p<n>}` (n < PARTITIONS): a partition of ids (a conversation's, a user's) for the keys that
  many ids share and a worker reads as a whole: the outbox and transcription streams, the
  hot-window index, the online-user sets. A conversation's messages live in its partition, so
  the send script writes the document, the outbox entry and the indexes in one slot.
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


def conversation_tag(conversation_id: str) -> str:
    return f"{{c:{conversation_id}}}"


def user_tag(user_id: str) -> str:
    return f"{{u:{user_id}}}"
