"""The pieces of a push that need no server: the payload encryption (decrypted by an
independent implementation, http_ece), the VAPID header, the preview, the Topic and
Retry-After."""

from __future__ import annotations

import base64
import email.utils
import os
import re
import time

import http_ece
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from push.crypto import RECORD_SIZE, Vapid, encrypt, generate_private_key, load_private_key
from push.worker import VOICE_PREVIEW, preview_of, retry_after_seconds, topic_of
from storage.records import StoredAudio, StoredMessage, StoredTranscript


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_payload_decrypts_with_the_browsers_key_and_secret_only() -> None:
    browser = ec.generate_private_key(ec.SECP256R1())
    auth = os.urandom(16)
    p256dh = b64url(browser.public_key().public_bytes(serialization.Encoding.X962,
                                                      serialization.PublicFormat.UncompressedPoint))
    payload = "Ünïcödé and a long text ".encode() * 100
    body = encrypt(payload, p256dh, b64url(auth))
    assert int.from_bytes(body[16:20], "big") == RECORD_SIZE and body[20] == 65  # RFC 8188 header
    assert http_ece.decrypt(body, private_key=browser, auth_secret=auth, version="aes128gcm") == payload
    assert encrypt(payload, p256dh, b64url(auth)) != body  # a fresh salt and key each time
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(http_ece.ECEException):
        http_ece.decrypt(body, private_key=other, auth_secret=auth, version="aes128gcm")
    with pytest.raises(http_ece.ECEException):
        http_ece.decrypt(body, private_key=browser, auth_secret=os.urandom(16), version="aes128gcm")


def test_the_vapid_header_is_an_es256_jwt_for_the_push_services_origin() -> None:
    vapid = Vapid(load_private_key(generate_private_key()), "mailto:ops@example.com")
    header = vapid.authorization("https://updates.push.services.mozilla.com/wpush/v2/abc")
    match = re.fullmatch(r"vapid t=([\w.-]+), k=([\w-]+)", header)
    assert match is not None and match[2] == vapid.public_key and len(match[2]) == 87
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(),
                                                       base64.urlsafe_b64decode(match[2] + "="))
    claims = jwt.decode(match[1], key, algorithms=["ES256"], audience="https://updates.push.services.mozilla.com")
    assert claims["sub"] == "mailto:ops@example.com" and 0 < claims["exp"] - time.time() <= 24 * 3600
    assert vapid.authorization("https://updates.push.services.mozilla.com/other") == header  # cached per origin
    assert vapid.authorization("https://fcm.googleapis.com/fcm/send/x") != header
    later = vapid.authorization("https://updates.push.services.mozilla.com/x", now=time.time() + 12 * 3600)
    assert later != header  # signed again before the cached one expires


def test_the_preview_of_text_voice_and_transcript() -> None:
    text = StoredMessage(id="m", kind="TEXT", conversation_id="c", sender_id="s", receiver_id=None,
                         text="  line one\n\nline   two ", sent_at_ms=0)
    assert preview_of(text) == "line one line two"
    long = StoredMessage(id="m", kind="TEXT", conversation_id="c", sender_id="s", receiver_id=None,
                         text="x" * 500, sent_at_ms=0)
    assert preview_of(long) == "x" * 119 + "…"
    voice = StoredMessage(id="m", kind="VOICE", conversation_id="c", sender_id="s", receiver_id=None, text="",
                          sent_at_ms=0, audio=StoredAudio("a", "audio/ogg", 4, 1.0), transcription_status="PENDING")
    assert preview_of(voice) == VOICE_PREVIEW
    done = StoredMessage(id="m", kind="VOICE", conversation_id="c", sender_id="s", receiver_id=None, text="",
                         sent_at_ms=0, audio=StoredAudio("a", "audio/ogg", 4, 1.0), transcription_status="DONE",
                         transcript=StoredTranscript("see you at nine", "whisper"))
    assert preview_of(done) == "see you at nine"


def test_topic_and_retry_after() -> None:
    topic = topic_of("01M8N7ECQWJNX39YV1KYQXGE7P")
    assert re.fullmatch(r"[\w-]{32}", topic) and topic == topic_of("01M8N7ECQWJNX39YV1KYQXGE7P")
    assert topic != topic_of("01M8N7ECQWJNX39YV1KYQXGE7Q")

    def answer(value: str | None) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value} if value is not None else {})

    assert retry_after_seconds(answer("7")) == 7.0
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 55 <= (retry_after_seconds(answer(in_a_minute)) or 0) <= 61
    assert retry_after_seconds(answer("soon")) is None
    assert retry_after_seconds(answer(None)) is None and retry_after_seconds(None) is None
