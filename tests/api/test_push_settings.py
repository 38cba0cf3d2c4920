"""Web Push configuration: PUSH, VAPID_PRIVATE_KEY and VAPID_SUBJECT checked at start-up, the
dev-mode key generated once, and a server with push off saying so (and queueing nothing)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError

from api.settings import Settings
from api.startup import DEV_VAPID_SUBJECT, dev_vapid_private_key, vapid
from push.crypto import generate_private_key, load_private_key
from storage import keys
from tests.utils.graphql import register
from tests.utils.in_process import InProcessApp

BASE = {"_env_file": None, "jwt_secret": "k" * 40}


def test_push_needs_a_key_and_a_subject_outside_dev_mode() -> None:
    assert not Settings(**BASE).push_enabled  # off unless asked for
    with pytest.raises(ValidationError, match="needs VAPID_PRIVATE_KEY and VAPID_SUBJECT"):
        Settings(**BASE, push="on")
    with pytest.raises(ValidationError, match="needs VAPID_PRIVATE_KEY and VAPID_SUBJECT"):
        Settings(**BASE, push="on", vapid_private_key=generate_private_key())
    with pytest.raises(ValidationError, match="mailto: or https:"):
        Settings(**BASE, push="on", vapid_private_key=generate_private_key(), vapid_subject="ops@example.com")
    with pytest.raises(ValidationError, match="VAPID_PRIVATE_KEY: a raw VAPID private key is 32 bytes"):
        Settings(**BASE, push="on", vapid_private_key="c2hvcnQ", vapid_subject="mailto:ops@example.com")
    with pytest.raises(ValidationError, match="VAPID_PRIVATE_KEY: not base64url"):
        Settings(**BASE, push="on", vapid_private_key="a+b/", vapid_subject="mailto:ops@example.com")
    ok = Settings(**BASE, push="on", vapid_private_key=generate_private_key(), vapid_subject="https://example.com")
    assert ok.push_enabled


def test_a_pem_key_is_the_same_key_as_its_raw_form() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    raw = key.private_numbers().private_value.to_bytes(32, "big")

    assert load_private_key(pem).private_numbers() == load_private_key(
        base64.urlsafe_b64encode(raw).rstrip(b"=").decode()).private_numbers()
    with pytest.raises(ValueError, match="P-256"):
        load_private_key(ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode())


def test_dev_mode_pushes_with_a_key_generated_once(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, dev_mode=True, data_dir=tmp_path)
    assert settings.push_enabled
    first, again = vapid(settings), vapid(settings)
    assert first is not None and again is not None
    assert first.public_key == again.public_key and first.subject == DEV_VAPID_SUBJECT
    assert dev_vapid_private_key(tmp_path) == (tmp_path / "vapid_private_key").read_text()
    assert vapid(Settings(_env_file=None, dev_mode=True, data_dir=tmp_path, push="off")) is None


async def test_with_push_off_the_api_says_so_and_nothing_is_queued(in_process_app: InProcessApp) -> None:
    async with in_process_app.client() as gql:
        alice, bob = await register(gql), await register(gql)
        error = await gql.error("query { vapidPublicKey }", token=alice.token)
        assert error["extensions"]["code"] == "FORBIDDEN"
        subscription = {"endpoint": "https://push.example.com/x", "p256dh": "B" + "A" * 86, "auth": "A" * 22}
        error = await gql.error("mutation R($i: PushSubscriptionInput!) { registerPushSubscription(input: $i) }",
                                {"i": subscription}, token=alice.token)
        assert error["extensions"]["code"] == "FORBIDDEN"
        await gql.ok("mutation S($i: SendMessageInput!) { sendMessage(input: $i) { id } }",
                     {"i": {"receiverId": bob.id, "text": "hi"}}, token=alice.token)
    client = aioredis.Redis.from_url(in_process_app.redis_url)
    try:
        assert [await client.exists(stream) for stream in keys.push_streams()] == [0] * len(keys.push_streams())
    finally:
        await client.aclose()
