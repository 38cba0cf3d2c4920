"""What every resolver receives: the app's services and who is asking."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from resolvers.errors import NotAuthenticated
from resolvers.tokens import InvalidToken, TokenClaims, TokenService


@dataclass(frozen=True)
class Services:
    """Long-lived clients and helpers, opened in the app's lifespan."""

    redis: Redis
    tokens: TokenService


@dataclass
class Context:
    services: Services
    request: Any  # starlette Request or WebSocket
    response: Any = None
    token: str | None = None
    _claims: TokenClaims | None = field(default=None, repr=False)
    _auth_error: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.token is None:
            return
        try:
            self._claims = self.services.tokens.verify(self.token)
        except InvalidToken as exc:
            self._auth_error = str(exc)

    @property
    def viewer_id(self) -> str | None:
        return self._claims.user_id if self._claims else None

    def require_viewer(self) -> str:
        """The authenticated user's id, or UNAUTHENTICATED."""
        if self._claims is None:
            raise NotAuthenticated(
                f"Authentication required: {self._auth_error}" if self._auth_error
                else "Authentication required: send 'Authorization: Bearer <token>'"
            )
        return self._claims.user_id
