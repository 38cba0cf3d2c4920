"""What every resolver receives: the runtime container and who is asking."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from resolvers.errors import NotAuthenticated
from resolvers.limits import enforce
from resolvers.runtime import Runtime
from resolvers.tokens import InvalidToken, TokenClaims


@dataclass
class Context:
    runtime: Runtime
    request: Any  # starlette Request or WebSocket
    response: Any = None
    token: str | None = None
    user_loader: Any = None  # DataLoader of UserViews, batched per event-loop tick
    connection_params: dict[str, Any] | None = None  # WebSocket connection_init payload
    session_connection_id: str | None = None  # presence entry of this WebSocket
    session_user_id: str | None = None  # whose presence entry it is
    session_watchdog: Any = None  # timer closing the WebSocket when the token expires
    _claims: TokenClaims | None = field(default=None, repr=False)
    _auth_error: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.authenticate(self.token)

    def authenticate(self, token: str | None) -> TokenClaims | None:
        """Verify `token` and make its user the viewer (or remember why it failed)."""
        self.token, self._claims, self._auth_error = token, None, None
        if token is None:
            return None
        try:
            self._claims = self.runtime.tokens.verify(token)
        except InvalidToken as exc:
            self._auth_error = str(exc)
        return self._claims

    @property
    def viewer_id(self) -> str | None:
        return self._claims.user_id if self._claims else None

    @property
    def client_ip(self) -> str:
        client = getattr(self.request, "client", None)
        return client.host if client else "unknown"

    async def rate_limit(self, action: str, subject: str) -> None:
        """RATE_LIMITED when `subject` went over the `action` limit (see resolvers.limits)."""
        await enforce(self.runtime.limiter, self.runtime.limits, action, subject)

    def media_url(self, audio_id: str) -> str:
        """An absolute signed playback URL on the host the client used."""
        base = str(self.request.base_url).rstrip("/")
        base = base.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
        return base + self.runtime.media_signer.url(audio_id)

    def require_viewer(self) -> str:
        """The authenticated user's id, or UNAUTHENTICATED."""
        if self._claims is None:
            raise NotAuthenticated(
                f"Authentication required: {self._auth_error}" if self._auth_error
                else "Authentication required: send 'Authorization: Bearer <token>'"
            )
        return self._claims.user_id
