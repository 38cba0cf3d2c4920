"""Password hashing runs on its own small thread pool: bounded per process, and never queued
behind (or crowding out) the audio work on the event loop's default executor."""

from __future__ import annotations

import asyncio
import threading
import time

from argon2 import PasswordHasher

from resolvers.passwords import PasswordHashing, hash_password, password_matches
from tests.utils.graphql import LOGIN, PASSWORD, register
from tests.utils.in_process import InProcessApp


class RecordingHasher(PasswordHasher):
    """The real argon2id hasher, noting which thread verifies and how many verify at once."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[str] = []
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # type: ignore[override]
        with self._lock:
            self.threads.append(threading.current_thread().name)
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(0.05)  # widen the window in which a second verification could overlap
            return super().verify(hash, password)
        finally:
            with self._lock:
                self.running -= 1


async def test_verifications_run_one_at_a_time_on_the_dedicated_threads() -> None:
    hasher = RecordingHasher()
    hashing = PasswordHashing(concurrency=1, hasher=hasher)
    try:
        stored = await hash_password(hashing, "secret pass")
        verdicts = await asyncio.gather(*(password_matches(hashing, stored, p)
                                          for p in ["secret pass", "wrong one", "secret pass", "x", "y", "z"]))
    finally:
        hashing.close()
    assert verdicts == [True, False, True, False, False, False]
    assert len(hasher.threads) == 6 and hasher.most_at_once == 1
    assert all(name.startswith("password-hash") for name in hasher.threads), hasher.threads
    assert not any(name.startswith("asyncio") for name in hasher.threads)  # the default executor's threads


async def test_login_answers_while_the_default_executor_is_busy(in_process_app: InProcessApp) -> None:
    async with in_process_app.client() as gql:
        user = await register(gql)
        loop = asyncio.get_running_loop()
        gate = threading.Event()
        # Occupy every default-executor thread (as long audio probes or transcriptions would).
        busy = [loop.run_in_executor(None, gate.wait, 30) for _ in range(64)]
        try:
            async with asyncio.timeout(10):
                data = await gql.ok(LOGIN, {"input": {"login": user.username, "password": PASSWORD}})
        finally:
            gate.set()
            await asyncio.gather(*busy)
    assert data["login"]["user"]["id"] == user.id
