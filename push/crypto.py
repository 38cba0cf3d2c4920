"""The cryptography of Web Push: the application server's VAPID key and signed JWT (RFC 8292)
and the `aes128gcm` payload encryption for one subscription (RFC 8291 over RFC 8188)."""

from __future__ import annotations

import base64
import os
import struct
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

RECORD_SIZE = 4096  # one record: a push message's payload is at most about 4 KB anyway
PUBLIC_KEY_BYTES = 65  # an uncompressed P-256 point
AUTH_SECRET_BYTES = 16
JWT_TTL_SECONDS = 12 * 3600  # RFC 8292: at most 24 hours
JWT_RENEW_SECONDS = 3600  # a cached JWT is signed again this long before it expires


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Base64url with or without padding; ValueError on anything else."""
    if not isinstance(text, str) or not text or any(c in text for c in "+/ \n"):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def generate_private_key() -> str:
    """A new VAPID private key as VAPID_PRIVATE_KEY takes it: the raw P-256 scalar, base64url."""
    key = ec.generate_private_key(ec.SECP256R1())
    return b64url_encode(key.private_numbers().private_value.to_bytes(32, "big"))


def load_private_key(text: str) -> ec.EllipticCurvePrivateKey:
    """VAPID_PRIVATE_KEY: a PEM P-256 key, or the raw 32-byte scalar in base64url (what
    `web-push generate-vapid-keys` prints). ValueError on anything else."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
    else:
        raw = b64url_decode(text)
        if len(raw) != 32:
            raise ValueError("a raw VAPID private key is 32 bytes (base64url)")
        key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("a VAPID key is a P-256 (prime256v1) key")
    return key


def public_bytes(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


@dataclass
class Vapid:
    """The application server's identity: signs a JWT per push service origin (cached)."""

    private_key: ec.EllipticCurvePrivateKey
    subject: str  # mailto: or https: contact for the push service's operators
    _tokens: dict[str, tuple[str, float]] = field(default_factory=dict)

    @property
    def public_key(self) -> str:
        """What `PushManager.subscribe` takes as `applicationServerKey` (base64url, 65 bytes)."""
        return b64url_encode(public_bytes(self.private_key.public_key()))

    def authorization(self, endpoint: str, now: float | None = None) -> str:
        """The Authorization header for a push to `endpoint` (RFC 8292 `vapid` scheme)."""
        now = time.time() if now is None else now
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        cached = self._tokens.get(audience)
        if cached is None or cached[1] - JWT_RENEW_SECONDS < now:
            expires = int(now) + JWT_TTL_SECONDS
            token = jwt.encode({"aud": audience, "exp": expires, "sub": self.subject}, self.private_key,
                               algorithm="ES256", headers={"typ": "JWT"})
            cached = self._tokens[audience] = (token, expires)
        return f"vapid t={cached[0]}, k={self.public_key}"


def encrypt(payload: bytes, p256dh: str, auth: str) -> bytes:
    """The body of a push message to one subscription: `payload` encrypted with `aes128gcm`
    for the browser's key `p256dh` and secret `auth` (RFC 8291, section 3.4), one record."""
    ua_public = b64url_decode(p256dh)
    auth_secret = b64url_decode(auth)
    receiver = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), ua_public)
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    as_public = public_bytes(ephemeral.public_key())
    shared = ephemeral.exchange(ec.ECDH(), receiver)
    ikm = _hkdf(auth_secret, shared, b"WebPush: info\x00" + ua_public + as_public, 32)
    salt = os.urandom(16)
    key = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
    if len(payload) + 1 + 16 > RECORD_SIZE:
        raise ValueError("a push payload fits one 4 KB record")
    ciphertext = AESGCM(key).encrypt(nonce, payload + b"\x02", None)  # \x02: the last record's delimiter
    header = salt + struct.pack("!IB", RECORD_SIZE, len(as_public)) + as_public
    return header + ciphertext


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=SHA256(), length=length, salt=salt, info=info).derive(ikm)
