"""Presence in Redis: its keys and the Lua scripts that change them atomically.

Users are spread over the `storage.slots` partitions; each partition's keys share its hash tag,
so every script touches ONE Redis Cluster slot:
- `cg:presence:{p<n>}:online` sorted set user id -> latest connection expiry ms;
- `cg:presence:{p<n>}:online-ids` the same members at score 0, for paging by id (BYLEX);
- `cg:presence:{p<n>}:conns:<user>` sorted set connection id -> expiry ms;
- `cg:presence:{p<n>}:profile:<user>` what the user's presence events tell about them, kept
  while they are online (the offline event, published by a script, carries it).
The channel is passed in ARGV, never KEYS: channels are not keys and have no slot.
"""

from __future__ import annotations

from storage.hot import KEY_PREFIX
from storage.slots import partition_of, partition_tag


def _prefix(partition: int) -> str:
    return f"{KEY_PREFIX}:presence:{partition_tag(partition)}:"


def online_users(partition: int) -> str:
    return _prefix(partition) + "online"


def online_user_ids(partition: int) -> str:
    return _prefix(partition) + "online-ids"


def connections_prefix(partition: int) -> str:
    return _prefix(partition) + "conns:"


def profile_prefix(partition: int) -> str:
    return _prefix(partition) + "profile:"


def user_keys(user_id: str) -> list[str]:
    """KEYS of the per-user scripts: conns, profile, online, online-ids (one slot)."""
    partition = partition_of(user_id)
    return [connections_prefix(partition) + user_id, profile_prefix(partition) + user_id,
            online_users(partition), online_user_ids(partition)]


# Never shortens a key's life (another connection may expire later); PEXPIREAT GT would
# never set a first expiry (it treats none as infinite).
_EXTEND = """
local function extend(key, at_ms)
  if redis.call('PEXPIRETIME', key) < tonumber(at_ms) then
    redis.call('PEXPIREAT', key, at_ms)
  end
end
"""

# Built here from the stored profile (raw JSON), so no subscriber looks the user up.
_OFFLINE_EVENT = """
local function offline_event(uid, at_ms, profile)
  local event = '{"user_id":' .. cjson.encode(uid) .. ',"online":false,"at_ms":' .. at_ms
  if profile then
    event = event .. ',"profile":' .. profile
  end
  return event .. '}'
end
"""

# KEYS user_keys; ARGV connection, expiry ms, now ms, user, online event, profile ('' for none), channel
CONNECT = _EXTEND + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local before = redis.call('ZCARD', KEYS[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
extend(KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[3], 'GT', ARGV[2], ARGV[4])
redis.call('ZADD', KEYS[4], 0, ARGV[4])
if ARGV[6] ~= '' then
  redis.call('SET', KEYS[2], ARGV[6], 'PXAT', redis.call('PEXPIRETIME', KEYS[1]))
end
if before == 0 then
  redis.call('PUBLISH', ARGV[7], ARGV[5])
  return 1
end
return 0
"""

# KEYS user_keys; ARGV connection, expiry ms, user. Refreshes a connection only while it is still
# registered: a beat queued before a disconnect that reaches Redis after it adds nothing back.
HEARTBEAT = _EXTEND + """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
extend(KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[3], 'GT', ARGV[2], ARGV[3])
if redis.call('EXISTS', KEYS[2]) == 1 then
  extend(KEYS[2], ARGV[2])
end
return 1
"""

# KEYS user_keys; ARGV connection, now ms, user, channel
DISCONNECT = _OFFLINE_EVENT + """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) == 0 and redis.call('ZREM', KEYS[3], ARGV[3]) == 1 then
  redis.call('ZREM', KEYS[4], ARGV[3])
  local profile = redis.call('GET', KEYS[2])
  redis.call('DEL', KEYS[2])
  redis.call('PUBLISH', ARGV[4], offline_event(ARGV[3], ARGV[2], profile))
  return 1
end
return 0
"""

# KEYS online, online-ids of one partition; ARGV now ms, conns prefix, profile prefix, channel.
# The per-user keys it builds carry the partition's tag: the same slot.
SWEEP = _OFFLINE_EVENT + """
local users = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 200)
local gone = {}
for _, uid in ipairs(users) do
  local conns = ARGV[2] .. uid
  redis.call('ZREMRANGEBYSCORE', conns, '-inf', ARGV[1])
  local newest = redis.call('ZRANGE', conns, -1, -1, 'WITHSCORES')
  if newest[2] then
    redis.call('ZADD', KEYS[1], newest[2], uid)
  else
    redis.call('ZREM', KEYS[1], uid)
    redis.call('ZREM', KEYS[2], uid)
    local profile = redis.call('GET', ARGV[3] .. uid)
    redis.call('DEL', ARGV[3] .. uid)
    redis.call('PUBLISH', ARGV[4], offline_event(uid, ARGV[1], profile))
    table.insert(gone, uid)
  end
end
return gone
"""
