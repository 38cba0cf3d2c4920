"""Every Redis key and channel name outside redis-om models is built here."""

from collections.abc import Iterable

from storage.hot import KEY_PREFIX
from storage.slots import PARTITIONS, partition_of, partition_tag, user_tag

OUTBOX_GROUP = "persisters"
PRESENCE_CHANNEL = f"{KEY_PREFIX}:events:presence"
TRANSCRIPTION_GROUP = "transcribers"


MESSAGE_PREFIX = f"{KEY_PREFIX}:message:"  # the RediSearch index of `MessageHot` covers these keys


def _conv(conversation_id: str) -> str:
    """The common start of a conversation's keys: its partition's hash tag, so the send script
    writes the message, the conversation's indexes and its members' state in one slot."""
    return f"{KEY_PREFIX}:conv:{partition_tag(partition_of(conversation_id))}:{conversation_id}"


def message_key(conversation_id: str, message_id: str) -> str:
    """A message's JSON document (indexed by RediSearch through `MessageHot`), in its
    conversation's partition."""
    return f"{MESSAGE_PREFIX}{partition_tag(partition_of(conversation_id))}:{message_id}"


ARCHIVED_MARK = ":a:"  # between a partition's tag and a message id: the slim search entry


def archived_message_entry(conversation_id: str, message_id: str) -> str:
    """The slim search entry of a message that left the hot window (storage/archive_index.py):
    under the message prefix, so the one message index covers it; in the message's partition,
    so the trim script swaps the document for it in one slot."""
    return f"{MESSAGE_PREFIX}{partition_tag(partition_of(conversation_id))}{ARCHIVED_MARK}{message_id}"


def is_archived_message_entry(key: str) -> bool:
    return ARCHIVED_MARK in key.removeprefix(MESSAGE_PREFIX)


def message_keys_anywhere(message_id: str) -> list[str]:
    """Every key a message with this id could have (one per partition): a lookup by id alone."""
    return [f"{MESSAGE_PREFIX}{partition_tag(p)}:{message_id}" for p in range(PARTITIONS)]


def message_id_of_key(key: str) -> str:
    return key.rsplit(":", 1)[1]


def user_events(user_id: str) -> str:
    """Pub/sub channel of one user's message events."""
    return f"{KEY_PREFIX}:events:user:{user_id}"


def outbox_stream(partition: int) -> str:
    """Stream of one partition's changes for the persister to copy into MongoDB (entries name
    their conversation: its messages, read markers and new DIRECT conversations)."""
    return f"{KEY_PREFIX}:outbox:{partition_tag(partition)}"


def outbox_streams() -> list[str]:
    return [outbox_stream(p) for p in range(PARTITIONS)]


def transcription_stream(partition: int) -> str:
    """Stream of one partition's transcription jobs: message id, conversation id, attempt
    (and the audio read failures of that attempt)."""
    return f"{KEY_PREFIX}:transcribe:{partition_tag(partition)}"


def transcription_streams() -> list[str]:
    return [transcription_stream(p) for p in range(PARTITIONS)]


def transcription_delayed(partition: int) -> str:
    """Sorted set of one partition's retried transcription jobs
    ("<message id>:<conversation id>:<attempt>[:<read failures>]") -> due ms."""
    return f"{KEY_PREFIX}:transcribe:delayed:{partition_tag(partition)}"


def hot_messages(partition: int) -> str:
    """Sorted set of one partition's hot-window messages, "<message id>:<conversation id>", all
    score 0: ordered by id, i.e. by time."""
    return f"{KEY_PREFIX}:messages:hot:{partition_tag(partition)}"


def conversation_meta(conversation_id: str) -> str:
    """Hash: kind, title, version (of the MongoDB document it mirrors), created_ms, and
    `archived` = 1 once some of its messages live only in MongoDB (history asks MongoDB only then)."""
    return _conv(conversation_id)


def conversation_members(conversation_id: str) -> str:
    """Hash: member id -> "<role>:<joined ms>". Every send, read and typing script checks it."""
    return f"{_conv(conversation_id)}:members"


def conversation_messages(conversation_id: str) -> str:
    """Sorted set of the conversation's hot message ids (all score 0: ordered by id, i.e. time)."""
    return f"{_conv(conversation_id)}:msgs"


def conversation_sent(conversation_id: str, sender_id: str) -> str:
    """Sorted set of the hot message ids one member sent (score 0): a member's unread count is
    ZLEXCOUNT of the conversation after their marker minus ZLEXCOUNT of their own."""
    return f"{_conv(conversation_id)}:sent:{sender_id}"


def published_revision(conversation_id: str, message_id: str) -> str:
    """The newest revision of an archived message whose event went out: an older one's late
    event is dropped (MongoDB writes and publishing are two steps there)."""
    return f"{_conv(conversation_id)}:published:{message_id}"


def read_markers(conversation_id: str) -> str:
    """Hash: member id -> id of the last message that member has read."""
    return f"{_conv(conversation_id)}:read"


def read_times(conversation_id: str) -> str:
    """Hash: member id -> ms when that member last moved their read marker."""
    return f"{_conv(conversation_id)}:readat"


def typing(conversation_id: str, user_id: str, part: str) -> str:
    """Typing state of a member: `active` (refreshed while typing), `announced` (a start event
    went out), `throttle` (no second start event within 2 s)."""
    return f"{_conv(conversation_id)}:typing:{user_id}:{part}"


def conversation_list(partition: int, user_id: str) -> str:
    """Sorted set: conversation id -> ms of its latest activity, for one member's conversations
    in one partition. In the conversations' slot, so the send script moves every member's entry
    in the same atomic step as the message; a user's whole list is the union of the partitions."""
    return f"{KEY_PREFIX}:list:{partition_tag(partition)}:{user_id}"


def conversation_lists_of(conversation_id: str, user_ids: Iterable[str]) -> list[str]:
    """The list keys holding `conversation_id` for each of these members (one slot)."""
    partition = partition_of(conversation_id)
    return [conversation_list(partition, user_id) for user_id in user_ids]


def user_conversations_built(user_id: str) -> str:
    """Set once the user's `conversation_list`s were rebuilt from MongoDB for this Redis dataset."""
    return f"{KEY_PREFIX}:user:{user_tag(user_id)}:convs-built"


def client_id(sender_id: str, client_id: str) -> str:
    """Idempotency: a sender's clientId -> the id of the message it was reserved for."""
    return f"{KEY_PREFIX}:user:{user_tag(sender_id)}:clientid:{client_id}"


def conversation_events(user_id: str) -> str:
    """Pub/sub channel of conversation events (reads, typing, membership) for one user."""
    return f"{KEY_PREFIX}:events:conv:{user_id}"


def layout_version() -> str:
    """The Redis data layout this dataset is in (see `storage.migration`)."""
    return f"{KEY_PREFIX}:layout"


def archive_markers_ready() -> str:
    """Set once every conversation with archive-only messages was marked (its meta's
    `archived`) for this Redis dataset."""
    return f"{KEY_PREFIX}:archive:markers-ready"


def archive_search_ready() -> str:
    """Set once every archived message older than the hot window has its slim search entry
    (storage/archive_index.py) in this Redis dataset."""
    return f"{KEY_PREFIX}:archive:search-ready"


# Token revocation (storage/revocations.py). Both per-user keys carry the user's hash tag, so
# the check reads them with one MGET and the generation script touches one slot.
REVOCATIONS_CHANNEL = f"{KEY_PREFIX}:events:revocations"
"""Pub/sub channel every instance listens on: a token or a user's older tokens were revoked."""


def token_generation(user_id: str) -> str:
    """A user's token generation (tokens of an older one are revoked); MongoDB `users` holds the
    record (`token_generation`), this copy expires and is restored from it."""
    return f"{KEY_PREFIX}:{user_tag(user_id)}:token-gen"


def revoked_token(user_id: str, token_id: str) -> str:
    """Set while one logged-out token (its `jti`) would still be unexpired."""
    return f"{KEY_PREFIX}:{user_tag(user_id)}:revoked:{token_id}"


PUSH_GROUP = "pushers"


def push_stream(partition: int) -> str:
    """Stream of one partition's new messages to notify offline members of by Web Push (message
    id, conversation id); the send script appends to it when push is on."""
    return f"{KEY_PREFIX}:push:{partition_tag(partition)}"


def push_streams() -> list[str]:
    return [push_stream(p) for p in range(PARTITIONS)]


def user_mutes(user_id: str) -> str:
    """Hash of the conversations a user muted: conversation id -> until (ms; 0 = until unmuted)."""
    return f"{KEY_PREFIX}:{user_tag(user_id)}:mutes"


# Blocks (storage/blocks.py): both per-user keys carry the blocker's hash tag (one slot per script).
BLOCKS_CHANNEL = f"{KEY_PREFIX}:events:blocks"
"""Pub/sub channel every instance listens on: the id of a user whose blocks changed."""


def blocking(user_id: str) -> str:
    """Set: the ids the user blocked, plus "_" once complete (MongoDB `blocks` holds the record)."""
    return f"{KEY_PREFIX}:{user_tag(user_id)}:blocking"


def blocking_changes(user_id: str) -> str:
    """Counter of the user's block changes: a rebuild of `blocking` read before one is dropped."""
    return f"{KEY_PREFIX}:{user_tag(user_id)}:blocking-changes"
