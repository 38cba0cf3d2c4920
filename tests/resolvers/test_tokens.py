from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from resolvers.tokens import InvalidToken, TokenService, bearer_token

SECRET = "s" * 64


def test_issue_and_verify_round_trip() -> None:
    service = TokenService(secret=SECRET, ttl_seconds=3600)
    token, expires = service.issue("01ABC")
    claims = service.verify(token)
    assert claims.user_id == "01ABC" and claims.expires_at == expires


def test_expired_and_foreign_tokens_are_invalid() -> None:
    service = TokenService(secret=SECRET, ttl_seconds=60)
    old, _ = service.issue("u", now=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(InvalidToken, match="expired"):
        service.verify(old)
    foreign = TokenService(secret="o" * 64, ttl_seconds=60).issue("u")[0]
    with pytest.raises(InvalidToken, match="invalid"):
        service.verify(foreign)
    unsigned = jwt.encode({"sub": "u", "iat": 1, "exp": 2**40}, None, algorithm="none")
    with pytest.raises(InvalidToken):
        service.verify(unsigned)


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("abc", "abc"), ("Basic abc", None), ("", None), (None, None)],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_every_token_has_its_own_id_and_carries_the_generation() -> None:
    service = TokenService(secret=SECRET, ttl_seconds=3600)
    first, second = service.verify(service.issue("u")[0]), service.verify(service.issue("u", generation=7)[0])
    assert first.token_id != second.token_id
    assert (first.generation, second.generation) == (0, 7)


def test_a_token_from_before_token_ids_is_generation_0_with_a_stable_id() -> None:
    service = TokenService(secret=SECRET, ttl_seconds=3600)
    legacy = jwt.encode({"sub": "u", "iat": datetime.now(UTC), "exp": datetime.now(UTC) + timedelta(hours=1)},
                        SECRET, algorithm="HS256")
    claims = service.verify(legacy)
    assert claims.generation == 0 and claims.token_id == service._verify(legacy).token_id


@pytest.mark.parametrize("jti", ["x.abc", "abc", "-1.abc", 5, "1" * 13 + ".a"])
def test_a_malformed_token_id_is_invalid(jti: object) -> None:
    service = TokenService(secret=SECRET, ttl_seconds=3600)
    now = datetime.now(UTC)
    token = jwt.encode({"sub": "u", "iat": now, "exp": now + timedelta(hours=1), "jti": jti}, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        service.verify(token)
