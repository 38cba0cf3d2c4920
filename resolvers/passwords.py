"""Password hashing with argon2id on a small thread pool of its own (hashing is deliberately
slow): it stays off the event loop, bounded per process, and off the default executor that
audio probing and transcription use."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class PasswordHashing:
    """The hasher and the threads it runs on; built once at start-up, closed at shutdown."""

    def __init__(self, concurrency: int = 2, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()  # argon2id with the library's recommended parameters
        # Verified against when the login names no user, so both failures take the same time.
        self.dummy_hash = self.hasher.hash("not-a-real-password-just-for-timing")
        self.executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="password-hash")

    def close(self) -> None:
        # Queued checks are dropped; a running one finishes on its thread (well under a second).
        self.executor.shutdown(wait=False, cancel_futures=True)

    def matches_blocking(self, password_hash: str | None, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash or self.dummy_hash, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False


async def hash_password(hashing: PasswordHashing, password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(hashing.executor, hashing.hasher.hash, password)


async def password_matches(hashing: PasswordHashing, password_hash: str | None, password: str) -> bool:
    """True only for the right password. Returns a bool (never raises on a mismatch) so the
    caller must branch on the awaited value; a forgotten `await` yields a coroutine, which
    `resolvers.auth.login` refuses explicitly."""
    return await asyncio.get_running_loop().run_in_executor(
        hashing.executor, hashing.matches_blocking, password_hash, password
    )
