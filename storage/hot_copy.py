"""A hot copy of a message is never older than MongoDB's revision.

Restoring the hot window copies archived messages back into Redis while changes to them may
go to MongoDB (a message Redis does not hold is changed there). Whichever lands second
repairs the copy: the restore re-reads the revisions it copied, and an archived change
refreshes a copy that appeared meanwhile. One key per call (the message's document).
"""

from __future__ import annotations

import orjson
from redis.asyncio import Redis

from storage import keys
from storage.records import StoredMessage

# KEYS: the message's document. ARGV: revision, document JSON. Replaces an existing older copy.
_REFRESH_IF_OLDER = """
local rev = redis.call('JSON.GET', KEYS[1], '$.rev')
if not rev or (cjson.decode(rev)[1] or 0) >= tonumber(ARGV[1]) then return 0 end
redis.call('JSON.SET', KEYS[1], '$', ARGV[2])
return 1
"""


class HotCopies:
    def __init__(self, redis: Redis) -> None:
        self._refresh = redis.register_script(_REFRESH_IF_OLDER)

    async def refresh(self, message: StoredMessage) -> bool:
        """Replace Redis's copy of `message` if it holds an older revision; True if replaced."""
        return bool(await self._refresh(keys=[keys.message_key(message.conversation_id, message.id)],
                                        args=[message.rev, orjson.dumps(message.to_document())]))
