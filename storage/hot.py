"""The Redis hot copy (redis-om JSON models, indexed by RediSearch).

The models give the documents their shape and the search indexes their schema; the stores
read and write the documents through their own Redis client (never a model's class binding).
"""

from __future__ import annotations

from datetime import datetime

from aredis_om import Field, JsonModel
from aredis_om.model.migrations.schema.legacy_migrator import SchemaDetector
from redis.asyncio import Redis
from redis.exceptions import ResponseError

KEY_PREFIX = "cg"


class UserHot(JsonModel, index=True):
    """Mirror of a user for fast reads; `pk` is the user id."""

    username: str = Field(index=True, full_text_search=True)
    username_lower: str = Field(index=True)
    created_at: datetime
    last_seen_at: datetime | None = None

    class Meta:
        global_key_prefix = KEY_PREFIX
        model_key_prefix = "user"


class MessageHot(JsonModel, index=True):
    """A message in the hot window; `pk` is the message id. Written as raw JSON by the
    atomic send script in `storage.messages` (same shape as this model), indexed here."""

    client_id: str | None = None
    kind: str = Field(index=True)
    conversation_id: str = Field(index=True)  # search filters by the viewer's conversations
    sender_id: str = Field(index=True)
    receiver_id: str | None = None  # DIRECT only
    text: str = Field(full_text_search=True)
    sent_at_ms: int = Field(index=True, sortable=True)

    class Meta:
        global_key_prefix = KEY_PREFIX
        model_key_prefix = "message"


async def ensure_indexes(redis: Redis) -> None:
    """Create or update the RediSearch indexes; tolerate a concurrent instance doing the same."""
    try:
        await SchemaDetector(conn=redis).run()
    except ResponseError as exc:
        if "already exists" not in str(exc).lower():
            raise
