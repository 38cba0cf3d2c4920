"""JWT access tokens: HS256 only, `exp`, `iat` and `sub` required.

Every token also carries `jti`, `<generation>.<random>`: the whole is its id (`logout` revokes
that id), the prefix the user's token generation when it was issued (`logoutEverywhere` and
`changePassword` raise the generation, which revokes every token issued at an older one). Only
registered claims, so nothing but the user id is readable in a token. Tokens issued before
`jti` existed count as generation 0, with an id derived from the token itself. Revocation is checked outside this
module (storage/revocations.py): verifying stays free of I/O.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
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
    token_id: str = ""  # `jti`
    generation: int = 0  # `gen`


@dataclass(frozen=True)
class TokenService:
    secret: str
    ttl_seconds: int
    audience: str | None = None  # when set, issued in `aud` and required on the way in
    issuer: str | None = None  # likewise for `iss`

    def issue(self, user_id: str, *, generation: int = 0, now: datetime | None = None) -> tuple[str, datetime]:
        """A new token of `user_id` at the user's current token `generation`, and its expiry."""
        issued = (now or datetime.now(UTC)).replace(microsecond=0)
        expires = issued + timedelta(seconds=self.ttl_seconds)
        claims: dict[str, object] = {"sub": user_id, "iat": issued, "exp": expires,
                                     "jti": f"{generation}.{secrets.token_urlsafe(16)}"}
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
        sub, jti = claims["sub"], claims.get("jti")
        if not isinstance(sub, str) or not sub:
            raise InvalidToken("invalid token")
        if jti is None:  # issued before tokens had ids: generation 0, the token names itself
            jti = "0." + hashlib.sha256(token.encode()).hexdigest()[:32]
        generation, dot, _ = jti.partition(".") if isinstance(jti, str) else ("", "", "")
        if not dot or not generation.isdigit() or len(generation) > 12 or len(jti) > 80:
            raise InvalidToken("invalid token")
        gen = int(generation)
        return TokenClaims(user_id=sub, expires_at=datetime.fromtimestamp(claims["exp"], UTC),
                           token_id=jti, generation=gen)


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
