"""Use cases: Web Push subscriptions (the delivery itself is push/worker.py)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from urllib.parse import urlsplit

from resolvers.context import Context
from resolvers.errors import Forbidden, InvalidInput
from storage.push import StoredPushSubscription

MAX_ENDPOINT_LENGTH = 2048
P256DH_BYTES = 65  # an uncompressed P-256 point
AUTH_BYTES = 16
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# Names that only resolve inside a network: the server must not be made to POST there.
INTERNAL_SUFFIXES = (".local", ".localhost", ".internal", ".intranet", ".lan", ".home.arpa")


def vapid_public_key(ctx: Context) -> str:
    key = ctx.runtime.push.vapid_public_key
    if key is None:
        raise Forbidden("push notifications are off on this server")
    return key


async def register_push_subscription(ctx: Context, *, endpoint: str, p256dh: str, auth: str) -> bool:
    viewer_id = ctx.require_viewer()
    vapid_public_key(ctx)  # FORBIDDEN while push is off
    endpoint = valid_endpoint(endpoint, allow_loopback_http=ctx.runtime.push.allow_loopback_http)
    p256dh, point = valid_key(p256dh, P256DH_BYTES, field="p256dh")
    if point[0] != 4:  # the SEC 1 prefix of an uncompressed point
        raise InvalidInput("p256dh must be an uncompressed P-256 public key", field="p256dh")
    auth, _ = valid_key(auth, AUTH_BYTES, field="auth")
    subscription = StoredPushSubscription(user_id=viewer_id, endpoint=endpoint, p256dh=p256dh, auth=auth)
    await ctx.runtime.push_subscriptions.register(subscription)
    return True


async def unregister_push_subscription(ctx: Context, *, endpoint: str) -> bool:
    """True if the viewer had a subscription at `endpoint` (now removed); False otherwise."""
    viewer_id = ctx.require_viewer()
    return await ctx.runtime.push_subscriptions.unregister(viewer_id, endpoint)


def valid_endpoint(endpoint: str, *, allow_loopback_http: bool) -> str:
    """An https URL on the default port naming a public host (a push service), else
    BAD_USER_INPUT: the server POSTs to it, so it must not reach into its own network. With
    `allow_loopback_http` (tests), http on the loopback too."""
    try:
        parts = urlsplit(endpoint)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise InvalidInput("endpoint must be an https URL", field="endpoint") from None
    if allow_loopback_http and parts.scheme == "http" and host in LOOPBACK_HOSTS:
        return endpoint
    if (len(endpoint) > MAX_ENDPOINT_LENGTH or parts.scheme != "https" or not host or parts.username
            or parts.password or port not in (None, 443) or any(c.isspace() for c in endpoint)):
        raise InvalidInput("endpoint must be an https URL", field="endpoint")
    if not _public_host(host):
        raise InvalidInput("endpoint must be on a public push service", field="endpoint")
    return endpoint


def _public_host(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # a name: a dotted public one
        return "." in host.strip(".") and not host.rstrip(".").endswith(INTERNAL_SUFFIXES)
    return address.is_global


def valid_key(value: str, length: int, *, field: str) -> tuple[str, bytes]:
    """Base64url (padding optional) of exactly `length` bytes: (the text without padding, the bytes)."""
    text = value.rstrip("=")
    try:
        if not text or any(c in text for c in "+/=") or not text.isascii():
            raise ValueError
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, binascii.Error):
        raise InvalidInput(f"{field} must be base64url", field=field) from None
    if len(decoded) != length:
        raise InvalidInput(f"{field} must encode {length} bytes", field=field)
    return text, decoded
