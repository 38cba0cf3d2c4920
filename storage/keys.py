"""Every Redis key and channel name outside redis-om models is built here."""

from storage.hot import KEY_PREFIX


def online_users() -> str:
    """Sorted set: user id -> epoch ms until which the user counts as online."""
    return f"{KEY_PREFIX}:presence:online"


def user_connections(user_id: str) -> str:
    """Sorted set: connection id -> epoch ms until which that WebSocket counts as open."""
    return f"{KEY_PREFIX}:presence:conns:{user_id}"
