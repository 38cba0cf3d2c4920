"""LiveSessions: a process's open sessions by user, held weakly."""

from __future__ import annotations

import gc
from dataclasses import dataclass

from resolvers.sessions import LiveSessions


@dataclass
class FakeContext:  # unhashable, like resolvers.context.Context
    name: str


def test_sessions_are_found_by_user_and_leave_when_collected() -> None:
    sessions = LiveSessions()
    a1, a2, b = FakeContext("a1"), FakeContext("a2"), FakeContext("b")
    sessions.add("a", a1)
    sessions.add("a", a2)
    sessions.add("b", b)
    assert [c.name for c in sessions.of("a")] == ["a1", "a2"]
    assert list(sessions.of("nobody")) == []
    del a1
    gc.collect()
    assert [c.name for c in sessions.of("a")] == ["a2"]
    del b
    gc.collect()
    assert list(sessions.of("b")) == [] and "b" not in sessions._by_user
