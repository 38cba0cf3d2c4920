"""Signed, expiring playback URLs: `/media/<id>?c=<conversation>&u=<viewer>&exp=<unix>&sig=<hmac>`.

The signature binds the recording to the conversation it was shown in and to the viewer it was
shown to, so /media can check that the viewer is still a member when the URL is used."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass

# ASCII digits only (str.isdigit takes "²", int() refuses it); 20 digits outlast any real expiry.
_EXPIRES = re.compile(r"[0-9]{1,20}")


@dataclass(frozen=True)
class MediaSigner:
    key: bytes
    ttl_seconds: int = 3600

    @classmethod
    def from_secret(cls, secret: str, ttl_seconds: int = 3600) -> MediaSigner:
        # A key of its own, derived from the app secret: a URL signature is never a token.
        key = hmac.new(secret.encode(), b"chattergram media urls", hashlib.sha256).digest()
        return cls(key=key, ttl_seconds=ttl_seconds)

    def _signature(self, audio_id: str, conversation_id: str, viewer_id: str, expires: int) -> str:
        scope = f"{audio_id}:{conversation_id}:{viewer_id}:{expires}"
        mac = hmac.new(self.key, scope.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def url(self, audio_id: str, *, viewer_id: str, conversation_id: str = "", now: float | None = None) -> str:
        """`conversation_id` "" for an upload not sent yet (only its uploader may play it)."""
        expires = int((now or time.time()) + self.ttl_seconds)
        signature = self._signature(audio_id, conversation_id, viewer_id, expires)
        return f"/media/{audio_id}?c={conversation_id}&u={viewer_id}&exp={expires}&sig={signature}"

    def verify(
        self, audio_id: str, conversation_id: str, viewer_id: str, expires: str | None, signature: str | None, *,
        now: float | None = None,
    ) -> bool:
        if not expires or not signature or not _EXPIRES.fullmatch(expires):
            return False
        if not signature.isascii():  # compare_digest raises TypeError on non-ASCII str
            return False
        if int(expires) < (now or time.time()):
            return False
        expected = self._signature(audio_id, conversation_id, viewer_id, int(expires))
        return hmac.compare_digest(expected, signature)
