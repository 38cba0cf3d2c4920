from __future__ import annotations

import inspect

from resolvers.passwords import hash_password, password_matches


async def test_hash_is_argon2id_and_salted() -> None:
    first, second = await hash_password("secret pass"), await hash_password("secret pass")
    assert first.startswith("$argon2id$") and first != second


async def test_only_the_right_password_matches() -> None:
    stored = await hash_password("secret pass")
    assert await password_matches(stored, "secret pass") is True
    assert await password_matches(stored, "Secret pass") is False
    assert await password_matches(None, "secret pass") is False
    assert await password_matches("not a hash", "secret pass") is False


def test_an_unawaited_check_is_not_true() -> None:
    # The old app's bug: an un-awaited check is truthy. Ours compares with `is True`.
    pending = password_matches(None, "x")
    assert inspect.iscoroutine(pending) and pending is not True
    pending.close()
