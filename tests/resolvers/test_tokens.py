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
