"""What every resolver receives: the runtime container and who is asking."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from resolvers.errors import NotAuthenticated
from resolvers.limits import enforce
from resolvers.runtime import Network, Runtime
from resolvers.tokens import InvalidToken, TokenClaims

TOKEN_REVOKED = "token revoked"


def parse_trusted_proxies(text: str) -> tuple[Network, ...]:
    """TRUSTED_PROXIES ("10.0.0.1, 10.1.0.0/16, ::1") as networks; ValueError names a bad entry."""
    networks = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"TRUSTED_PROXIES: {item!r} is not an IP address or network") from None
    return tuple(networks)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; one spelling per client.
    return ip.ipv4_mapped or ip if isinstance(ip, ipaddress.IPv6Address) else ip


def is_trusted_proxy(address: str, trusted: tuple[Network, ...]) -> bool:
    ip = _ip(address)
    return ip is not None and any(ip in network for network in trusted)


def client_address(peer: str, forwarded_for: Iterable[str], trusted: tuple[Network, ...]) -> str:
    """The client's IP: the socket peer, unless it is a trusted proxy; then the right-most
    X-Forwarded-For hop that is not a trusted proxy (hops further left are the client's own word)."""
    if not is_trusted_proxy(peer, trusted):
        return peer
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        if not is_trusted_proxy(hop, trusted):
            ip = _ip(hop)  # appended by our proxy; anything but an address is not believed
            return str(ip) if ip is not None else peer
    return peer


@dataclass
class Context:
    runtime: Runtime
    request: Any  # starlette Request or WebSocket
    response: Any = None
    token: str | None = None
    user_loader: Any = None  # DataLoader of UserViews, batched per event-loop tick
    reply_loader: Any = None  # DataLoader of replied-to messages, made on first use
    connection_params: dict[str, Any] | None = None  # WebSocket connection_init payload
    session_connection_id: str | None = None  # presence entry of this WebSocket
    session_user_id: str | None = None  # whose presence entry it is
    session_watchdog: Any = None  # timer closing the WebSocket when the token expires
    _claims: TokenClaims | None = field(default=None, repr=False)
    _auth_error: str | None = field(default=None, repr=False)
    _revocation_checked: bool = field(default=False, repr=False)  # the process's cache said "not revoked"

    def __post_init__(self) -> None:
        self.authenticate(self.token)

    def authenticate(self, token: str | None) -> TokenClaims | None:
        """Verify `token` and make its user the viewer (or remember why it failed)."""
        self.token, self._claims, self._auth_error, self._revocation_checked = token, None, None, False
        if token is None:
            return None
        try:
            claims = self.runtime.tokens.verify(token)
        except InvalidToken as exc:
            self._auth_error = str(exc)
            return None
        # What this process already knows about revocations (no I/O); `check_revocation` asks
        # Redis when it knows nothing recent.
        known = self.runtime.revocations.known_revoked(claims.user_id, claims.token_id, claims.generation)
        if known:
            self._auth_error = TOKEN_REVOKED
            return None
        self._claims, self._revocation_checked = claims, known is False
        return claims

    async def check_revocation(self) -> TokenClaims | None:
        """Drop the viewer if their token was revoked (logout, logoutEverywhere, changePassword):
        answered from this process's cache when it can, else one Redis round-trip."""
        claims = self._claims
        if claims is not None and not self._revocation_checked and await self.runtime.revocations.is_revoked(
            claims.user_id, claims.token_id, claims.generation
        ):
            self._claims, self._auth_error = None, TOKEN_REVOKED
        return self._claims

    @property
    def claims(self) -> TokenClaims | None:
        return self._claims

    @property
    def viewer_id(self) -> str | None:
        return self._claims.user_id if self._claims else None

    @property
    def client_ip(self) -> str:
        """Who per-IP limits count: see client_address (the one place X-Forwarded-For is read)."""
        client = getattr(self.request, "client", None)
        peer = client.host if client else "unknown"
        return client_address(peer, self.request.headers.getlist("x-forwarded-for"), self.runtime.trusted_proxies)

    async def rate_limit(self, action: str, subject: str) -> None:
        """RATE_LIMITED when `subject` went over the `action` limit (see resolvers.limits)."""
        await enforce(self.runtime.limiter, self.runtime.limits, action, subject)

    def media_url(self, audio_id: str, conversation_id: str | None) -> str:
        """An absolute signed playback URL on the host the client used, for the viewer, of a
        recording sent in `conversation_id` (None: an upload not sent yet)."""
        base = str(self.request.base_url).rstrip("/")
        base = base.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
        scheme = self._forwarded_scheme()
        if scheme is not None:  # a TLS-terminating proxy's clients need its https
            base = scheme + base[base.index(":"):]
        signed = self.runtime.media_signer.url(audio_id, viewer_id=self.viewer_id or "",
                                               conversation_id=conversation_id or "")
        return base + signed

    def _forwarded_scheme(self) -> str | None:
        """X-Forwarded-Proto (http/https) when a trusted proxy sent it, else None."""
        client = getattr(self.request, "client", None)
        if client is None or not is_trusted_proxy(client.host, self.runtime.trusted_proxies):
            return None
        proto = self.request.headers.get("x-forwarded-proto", "").strip().lower()
        return proto if proto in ("http", "https") else None

    def require_viewer(self) -> str:
        """The authenticated user's id, or UNAUTHENTICATED."""
        if self._claims is None:
            raise NotAuthenticated(
                f"Authentication required: {self._auth_error}" if self._auth_error
                else "Authentication required: send 'Authorization: Bearer <token>'"
            )
        return self._claims.user_id
