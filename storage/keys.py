"""Every Redis key and channel name outside redis-om models is built here."""

from storage.hot import KEY_PREFIX, MessageHot

OUTBOX_STREAM = f"{KEY_PREFIX}:outbox"
OUTBOX_GROUP = "persisters"
PRESENCE_CHANNEL = f"{KEY_PREFIX}:events:presence"
TRANSCRIPTION_STREAM = f"{KEY_PREFIX}:transcribe"
TRANSCRIPTION_GROUP = "transcribers"
TRANSCRIPTION_DELAYED = f"{KEY_PREFIX}:transcribe:delayed"  # sorted set: job -> due ms


def message_key(message_id: str) -> str:
    """A message's JSON document (indexed by RediSearch through `MessageHot`)."""
    key: str = MessageHot.make_primary_key(message_id)  # redis-om leaves its return type unannotated
    return key


def user_events(user_id: str) -> str:
    """Pub/sub channel of one user's message events."""
    return f"{KEY_PREFIX}:events:user:{user_id}"


def conversation_id(a: str, b: str) -> str:
    """The same id for both directions of a conversation."""
    return f"{a}:{b}" if a <= b else f"{b}:{a}"


def conversation_messages(conversation: str) -> str:
    """Sorted set of the hot message ids of one conversation (all score 0: ordered by id)."""
    return f"{KEY_PREFIX}:conv:{conversation}"


def conversation_sent(conversation: str, sender_id: str) -> str:
    """Sorted set of the hot message ids one participant sent in a conversation (all score 0):
    unread counts come from ZLEXCOUNT, without loading a document."""
    return f"{KEY_PREFIX}:conv-sent:{conversation}:{sender_id}"


def sender_sets_ready() -> str:
    """Set once every hot message id is in its `conversation_sent` set (a dataset from before
    those sets existed is backfilled once)."""
    return f"{KEY_PREFIX}:conv-sent:ready"


def hot_messages() -> str:
    """Sorted set of every message id in the hot window (ordered by id, i.e. by time)."""
    return f"{KEY_PREFIX}:messages:hot"


def archived_conversations() -> str:
    """Set of the conversations that have messages only in the MongoDB archive (trimmed
    out of the hot window); history consults MongoDB only for these."""
    return f"{KEY_PREFIX}:archive:conversations"


def archive_markers_ready() -> str:
    """Set once `archived_conversations` was rebuilt from MongoDB for this Redis dataset."""
    return f"{KEY_PREFIX}:archive:markers-ready"


def client_id(sender_id: str, client_id: str) -> str:
    """Idempotency key: a sender's clientId -> the message id it created."""
    return f"{KEY_PREFIX}:clientid:{sender_id}:{client_id}"


def conversations(user_id: str) -> str:
    """Sorted set: partner id -> ms of the conversation's latest message."""
    return f"{KEY_PREFIX}:convs:{user_id}"


def conversations_built(user_id: str) -> str:
    """Set once `conversations`, unread counts and read markers were rebuilt from MongoDB."""
    return f"{KEY_PREFIX}:convs-built:{user_id}"


def unread_counts(user_id: str) -> str:
    """Hash: partner id -> messages from that partner after the user's read marker."""
    return f"{KEY_PREFIX}:unread:{user_id}"


def read_markers(user_id: str) -> str:
    """Hash: partner id -> id of the last message the user has read."""
    return f"{KEY_PREFIX}:read:{user_id}"


def read_times(user_id: str) -> str:
    """Hash: partner id -> ms when the user last moved that read marker."""
    return f"{KEY_PREFIX}:readat:{user_id}"


def conversation_events(user_id: str) -> str:
    """Pub/sub channel of read receipts and typing notices addressed to one user."""
    return f"{KEY_PREFIX}:events:conv:{user_id}"


def typing(user_id: str, partner_id: str, part: str) -> str:
    """Typing state of user -> partner: `active` (refreshed while typing), `announced`
    (a start event went out), `throttle` (no second start event within 2 s)."""
    return f"{KEY_PREFIX}:typing:{part}:{user_id}:{partner_id}"


# Token revocation (storage/revocations.py). Both per-user keys carry the user's hash tag, so
# the check reads them with one MGET and the generation script touches one slot.
from storage.slots import user_tag  # noqa: E402  (kept beside the builders that use it)

REVOCATIONS_CHANNEL = f"{KEY_PREFIX}:events:revocations"
"""Pub/sub channel every instance listens on: a token or a user's older tokens were revoked."""


def token_generation(user_id: str) -> str:
    """A user's token generation (tokens of an older one are revoked); MongoDB `users` holds the
    record (`token_generation`), this copy expires and is restored from it."""
    return f"{KEY_PREFIX}:{user_tag(user_id)}:token-gen"


def revoked_token(user_id: str, token_id: str) -> str:
    """Set while one logged-out token (its `jti`) would still be unexpired."""
    return f"{KEY_PREFIX}:{user_tag(user_id)}:revoked:{token_id}"
