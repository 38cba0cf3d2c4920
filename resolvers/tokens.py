"""JWT access tokens: HS256 only, `exp`, `iat` and `sub` required."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

ALGORITHM = "HS256"


class InvalidToken(Exception):
    """The token is missing, malformed, expired, or not signed by us."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: str
    expires_at: datetime


@dataclass(frozen=True)
class TokenService:
    secret: str
    ttl_seconds: int
    audience: str | None = None  # when set, issued in `aud` and required on the way in
    issuer: str | None = None  # likewise for `iss`

    def issue(self, user_id: str, *, now: datetime | None = None) -> tuple[str, datetime]:
        issued = (now or datetime.now(UTC)).replace(microsecond=0)
        expires = issued + timedelta(seconds=self.ttl_seconds)
        claims: dict[str, object] = {"sub": user_id, "iat": issued, "exp": expires}
        if self.audience:
            claims["aud"] = self.audience
        if self.issuer:
            claims["iss"] = self.issuer
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM), expires

    def verify(self, token: str) -> TokenClaims:
        """The token's claims; a token verified before is answered from a small cache (the
        signature check dominated request CPU), its expiry checked again on every use."""
        claims = _verified(self, token)
        if claims.expires_at <= datetime.now(UTC):
            raise InvalidToken("token expired")
        return claims

    def _verify(self, token: str) -> TokenClaims:
        required = ["exp", "iat", "sub"] + (["aud"] if self.audience else []) + (["iss"] if self.issuer else [])
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],  # fixed: never the token's own choice
                audience=self.audience,
                issuer=self.issuer,
                options={"require": required},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token expired") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken("invalid token") from exc
        sub = claims["sub"]
        if not isinstance(sub, str) or not sub:
            raise InvalidToken("invalid token")
        return TokenClaims(user_id=sub, expires_at=datetime.fromtimestamp(claims["exp"], UTC))


@functools.lru_cache(maxsize=4096)
def _verified(service: TokenService, token: str) -> TokenClaims:
    return service._verify(token)


def bearer_token(value: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` value (or of a bare token)."""
    if not value:
        return None
    scheme, _, rest = value.strip().partition(" ")
    if rest and scheme.lower() == "bearer":
        return rest.strip() or None
    return None if rest else scheme
