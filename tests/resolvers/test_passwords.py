from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest

from resolvers.passwords import PasswordHashing, hash_password, password_matches


@pytest.fixture(scope="module")
def hashing() -> Iterator[PasswordHashing]:
    hashing = PasswordHashing()
    yield hashing
    hashing.close()


async def test_hash_is_argon2id_and_salted(hashing: PasswordHashing) -> None:
    first, second = await hash_password(hashing, "secret pass"), await hash_password(hashing, "secret pass")
    assert first.startswith("$argon2id$") and first != second


async def test_only_the_right_password_matches(hashing: PasswordHashing) -> None:
    stored = await hash_password(hashing, "secret pass")
    assert await password_matches(hashing, stored, "secret pass") is True
    assert await password_matches(hashing, stored, "Secret pass") is False
    assert await password_matches(hashing, None, "secret pass") is False
    assert await password_matches(hashing, "not a hash", "secret pass") is False


def test_an_unawaited_check_is_not_true(hashing: PasswordHashing) -> None:
    # The old app's bug: an un-awaited check is truthy. Ours compares with `is True`.
    pending = password_matches(hashing, None, "x")
    assert inspect.iscoroutine(pending) and pending is not True
    pending.close()
