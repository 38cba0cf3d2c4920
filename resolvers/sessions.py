"""This process's open WebSocket sessions, by user: what a revocation must close."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any


class LiveSessions:
    """Weak references to each open session's context: a session that ends (and is collected)
    leaves by itself, so nothing has to unregister it (callers check the session is still open).
    Plain weakrefs in a list per user (no WeakSet: contexts are unhashable dataclasses, and a
    WeakValueDictionary per user costs far more per idle socket); dead ones are dropped lazily."""

    def __init__(self) -> None:
        self._by_user: dict[str, list[weakref.ref[Any]]] = {}
        self._sweep_at = 1024

    def add(self, user_id: str, context: Any) -> None:
        if len(self._by_user) >= self._sweep_at:  # drop users whose sessions all ended
            for user in list(self._by_user):
                self._prune(user)
            self._sweep_at = max(1024, 2 * len(self._by_user))
        refs = self._by_user.setdefault(user_id, [])
        refs[:] = [ref for ref in refs if ref() is not None]
        refs.append(weakref.ref(context))

    def of(self, user_id: str) -> Iterator[Any]:
        return iter(self._prune(user_id))

    def _prune(self, user_id: str) -> list[Any]:
        live = [context for ref in self._by_user.get(user_id, ()) if (context := ref()) is not None]
        if live:
            self._by_user[user_id] = [weakref.ref(context) for context in live]
        else:
            self._by_user.pop(user_id, None)
        return live
