"""This process's open WebSocket sessions, by user: what a revocation must close."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any


class LiveSessions:
    """Weak references to each open session's context: a session that ends (and is collected)
    leaves by itself, so nothing has to unregister it (callers check the session is still open)."""

    def __init__(self) -> None:
        # Keyed by id(): contexts are dataclasses (unhashable); an entry leaves when its context is
        # collected, so a reused id is a new entry.
        self._by_user: dict[str, weakref.WeakValueDictionary[int, Any]] = {}
        self._sweep_at = 1024

    def add(self, user_id: str, context: Any) -> None:
        if len(self._by_user) >= self._sweep_at:  # users whose sessions all ended
            for gone in [user for user, sessions in self._by_user.items() if not sessions]:
                del self._by_user[gone]
            self._sweep_at = max(1024, 2 * len(self._by_user))
        self._by_user.setdefault(user_id, weakref.WeakValueDictionary())[id(context)] = context

    def of(self, user_id: str) -> Iterator[Any]:
        sessions = self._by_user.get(user_id)
        if sessions is None:
            return iter(())
        live = list(sessions.values())
        if not live:
            del self._by_user[user_id]
        return iter(live)
