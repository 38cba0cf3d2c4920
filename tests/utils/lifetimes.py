"""Servers that fixtures start live as long as the scope that started them: an app or a Redis
built inside a test (or a function-scoped fixture) is stopped when that test ends, one built by
a module-scoped fixture when its module ends, anything else (the shared `app`) with the session
(in-process apps: at the next start after that, see tests/utils/in_process.py).
Idle apps left running until the session's end kept their background loops busy and slowed
every later test on a 2-core machine."""

from __future__ import annotations

from collections.abc import Callable, Generator

import pytest

# Scopes that end before the session does; servers started in any other scope wait for it.
SHORT_SCOPES = ("function", "module")


class Lifetimes:
    def __init__(self) -> None:
        self._setting_up: list[str] = []  # scopes of the fixtures being set up, innermost last
        self._stops: dict[str, list[Callable[[], object]]] = {scope: [] for scope in SHORT_SCOPES}

    # A plugin (registered by tests/conftest.py) rather than a conftest hook: a conftest's hooks
    # do not see session-scoped fixtures, whose node (the session) lies above tests/.
    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef[object]) -> Generator[None, object, object]:
        self._setting_up.append(fixturedef.scope)
        try:
            return (yield)
        finally:
            self._setting_up.pop()

    def owned(self, stop: Callable[[], object]) -> bool:
        """Register `stop` for the end of the current scope; False when that is the session's."""
        scope = self._setting_up[-1] if self._setting_up else "function"  # a test body
        if scope not in self._stops:
            return False
        self._stops[scope].append(stop)
        return True

    def end(self, scope: str) -> None:
        """Stop what `scope` started, newest first (apps before the Redis they run on)."""
        stops = self._stops[scope]
        while stops:
            stops.pop()()


LIFETIMES = Lifetimes()
