"""Web Push end to end: the app served with push on, a local push service (RFC 8030) and
browsers' subscriptions made as a browser makes them. Each pushed body is decrypted with the
subscription's private key by an independent RFC 8291 implementation (http_ece), and its VAPID
JWT checked against `vapidPublicKey`. "No push" is asserted once the worker has handled every
queued message (the push streams are empty), never after a sleep."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import http_ece
import httpx
import jwt
import pytest
import redis.asyncio as aioredis
from cryptography.hazmat.primitives.asymmetric import ec

from api.dev_servers import EmbeddedServers
from push.crypto import generate_private_key
from storage import keys
from storage.slots import partition_of
from tests.conftest import TEST_JWT_SECRET
from tests.utils.fake_push_service import BrowserSubscription, FakePushService, PushRequest
from tests.utils.graphql import Account, GraphQLClient, register
from tests.utils.served import ServedApp, served_app
from tests.utils.ws import connect

SUBJECT = "mailto:ops@chattergram.test"
REGISTER_PUSH = "mutation R($input: PushSubscriptionInput!) { registerPushSubscription(input: $input) }"
UNREGISTER_PUSH = "mutation U($endpoint: String!) { unregisterPushSubscription(endpoint: $endpoint) }"
VAPID_KEY = "query { vapidPublicKey }"
SEND = "mutation S($input: SendMessageInput!) { sendMessage(input: $input) { id conversationId } }"
GROUP = "mutation G($input: CreateGroupInput!) { createGroup(input: $input) { id } }"
MUTE = """mutation M($id: ID!, $until: DateTime) {
  muteConversation(conversationId: $id, until: $until) { id muted mutedUntil } }"""
UNMUTE = "mutation U($id: ID!) { unmuteConversation(conversationId: $id) { id muted mutedUntil } }"
CONVERSATION = "query C($id: ID!) { conversation(id: $id) { id muted mutedUntil } }"


@pytest.fixture(scope="module")
async def push_service() -> AsyncIterator[FakePushService]:
    async with FakePushService().running() as service:
        yield service


@pytest.fixture(scope="module")
async def served(dev_servers: EmbeddedServers, tmp_path_factory: pytest.TempPathFactory,
                 push_service: FakePushService) -> AsyncIterator[ServedApp]:
    async with served_app(mongodb_base_url=dev_servers.mongodb_url.rsplit("/", 1)[0],
                          work_dir=tmp_path_factory.mktemp("push"), jwt_secret=TEST_JWT_SECRET,
                          push="on", vapid_private_key=generate_private_key(), vapid_subject=SUBJECT,
                          push_allow_loopback_http=True, push_retry_seconds=0.05,
                          push_claim_idle_seconds=1) as app:
        yield app


@pytest.fixture
async def gql(served: ServedApp) -> AsyncIterator[GraphQLClient]:
    async with httpx.AsyncClient(timeout=30) as http:
        yield GraphQLClient(http, served.graphql_url)


async def subscribe(gql: GraphQLClient, user: Account, subscription: BrowserSubscription) -> None:
    data = await gql.ok(REGISTER_PUSH, {"input": subscription.as_input()}, token=user.token)
    assert data["registerPushSubscription"] is True


async def send(gql: GraphQLClient, sender: Account, text: str, *, to: Account | None = None,
               conversation_id: str | None = None) -> dict[str, Any]:
    target = {"receiverId": to.id} if to else {"conversationId": conversation_id}
    return (await gql.ok(SEND, {"input": {**target, "text": text}}, token=sender.token))["sendMessage"]


async def all_handled(served: ServedApp, timeout: float = 20.0) -> None:
    """Until the push worker has handled every queued message (it deletes each entry once done)."""
    client = aioredis.Redis.from_url(served.redis_url)
    try:
        deadline = time.monotonic() + timeout
        while sum([await client.xlen(f"cg:push:{{p{p}}}") for p in range(16)]) > 0:
            assert time.monotonic() < deadline, "push entries still queued"
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()


def decrypt(request: PushRequest, subscription: BrowserSubscription) -> dict[str, Any]:
    plain = http_ece.decrypt(request.body, private_key=subscription.private_key,
                             auth_secret=subscription.auth_secret, version="aes128gcm")
    return dict(json.loads(plain))


def public_key_of(k: str) -> ec.EllipticCurvePublicKey:
    raw = base64.urlsafe_b64decode(k + "=" * (-len(k) % 4))
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)


async def test_an_offline_member_gets_an_encrypted_signed_push_an_online_one_none(
    served: ServedApp, gql: GraphQLClient, push_service: FakePushService
) -> None:
    alice, bob, carol = [await register(gql) for _ in range(3)]
    subscriptions = {name: push_service.subscription(f"{name}-{user.id}")
                     for name, user in (("alice", alice), ("bob", bob), ("carol", carol))}
    for name, user in (("alice", alice), ("bob", bob), ("carol", carol)):
        await subscribe(gql, user, subscriptions[name])
    group = (await gql.ok(GROUP, {"input": {"title": "Trip", "memberIds": [bob.id, carol.id]}},
                          token=alice.token))["createGroup"]["id"]
    async with connect(served.ws_url, carol.token):  # carol is online: no push for her
        sent = await send(gql, alice, "  See you\n at the station at 9  ", conversation_id=group)
        [request] = await push_service.wait_for(f"bob-{bob.id}")
        await all_handled(served)
    assert push_service.to(f"carol-{carol.id}") == [] and push_service.to(f"alice-{alice.id}") == []

    assert decrypt(request, subscriptions["bob"]) == {
        "type": "MESSAGE", "conversationId": group, "messageId": sent["id"], "conversationTitle": "Trip",
        "senderId": alice.id, "senderName": alice.username, "kind": "TEXT",
        "preview": "See you at the station at 9", "sentAt": pytest.approx(time.time() * 1000, abs=60_000),
    }
    headers = request.headers
    assert headers["content-encoding"] == "aes128gcm"
    assert headers["ttl"] == "86400" and headers["urgency"] == "high" and len(headers["topic"]) <= 32
    scheme, _, params = headers["authorization"].partition(" ")
    fields = dict(part.strip().split("=", 1) for part in params.split(","))
    assert scheme == "vapid"
    assert fields["k"] == (await gql.ok(VAPID_KEY, token=bob.token))["vapidPublicKey"]
    claims = jwt.decode(fields["t"], public_key_of(fields["k"]), algorithms=["ES256"],
                        audience=f"http://127.0.0.1:{push_service.port}")
    assert claims["sub"] == SUBJECT and 0 < claims["exp"] - time.time() <= 24 * 3600


async def test_a_muted_conversation_sends_no_push_until_the_mute_ends(
    served: ServedApp, gql: GraphQLClient, push_service: FakePushService
) -> None:
    alice, bob = await register(gql), await register(gql)
    subscription = push_service.subscription(f"muted-{bob.id}")
    await subscribe(gql, bob, subscription)
    conversation = (await send(gql, alice, "first", to=bob))["conversationId"]
    await push_service.wait_for(f"muted-{bob.id}")

    muted = (await gql.ok(MUTE, {"id": conversation}, token=bob.token))["muteConversation"]
    assert muted == {"id": conversation, "muted": True, "mutedUntil": None}
    assert (await gql.ok(CONVERSATION, {"id": conversation}, token=alice.token))["conversation"]["muted"] is False
    await send(gql, alice, "while muted", to=bob)
    await all_handled(served)
    assert len(push_service.to(f"muted-{bob.id}")) == 1

    # Redis lost the mute: restored from MongoDB (the hot window's restore step).
    client = aioredis.Redis.from_url(served.redis_url)
    await client.delete(keys.user_mutes(bob.id))
    await client.aclose()
    assert (await gql.ok(CONVERSATION, {"id": conversation}, token=bob.token))["conversation"]["muted"] is False
    assert await served.runtime.mutes.restore() >= 1
    assert (await gql.ok(CONVERSATION, {"id": conversation}, token=bob.token))["conversation"]["muted"] is True

    unmuted = (await gql.ok(UNMUTE, {"id": conversation}, token=bob.token))["unmuteConversation"]
    assert unmuted == {"id": conversation, "muted": False, "mutedUntil": None}
    await send(gql, alice, "after unmute", to=bob)
    [_, after] = await push_service.wait_for(f"muted-{bob.id}", 2)
    assert decrypt(after, subscription)["preview"] == "after unmute"

    # A mute with an end: it ends by itself.
    until = datetime.now(UTC) + timedelta(seconds=2)
    muted = (await gql.ok(MUTE, {"id": conversation, "until": until.isoformat()}, token=bob.token))["muteConversation"]
    assert muted["muted"] is True
    assert datetime.fromisoformat(muted["mutedUntil"]) == until.replace(microsecond=until.microsecond // 1000 * 1000)
    await send(gql, alice, "during the short mute", to=bob)
    await all_handled(served)
    assert len(push_service.to(f"muted-{bob.id}")) == 2
    while (await gql.ok(CONVERSATION, {"id": conversation}, token=bob.token))["conversation"]["muted"]:
        assert datetime.now(UTC) < until + timedelta(seconds=10), "the mute did not end"
        await asyncio.sleep(0.1)
    ended = (await gql.ok(CONVERSATION, {"id": conversation}, token=bob.token))["conversation"]
    assert ended["mutedUntil"] is None
    await send(gql, alice, "after the mute ended", to=bob)
    [*_, last] = await push_service.wait_for(f"muted-{bob.id}", 3)
    assert decrypt(last, subscription)["preview"] == "after the mute ended"


async def test_mute_input_errors(served: ServedApp, gql: GraphQLClient) -> None:
    alice, bob, mallory = [await register(gql) for _ in range(3)]
    conversation = (await send(gql, alice, "hi", to=bob))["conversationId"]
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    error = await gql.error(MUTE, {"id": conversation, "until": past}, token=bob.token)
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["extensions"]["field"] == "until"
    for query in (MUTE, UNMUTE):
        error = await gql.error(query, {"id": conversation}, token=mallory.token)
        assert error["extensions"]["code"] == "NOT_FOUND"
        assert (await gql.error(query, {"id": conversation}))["extensions"]["code"] == "UNAUTHENTICATED"
    # A DateTime without a time zone, or no date at all: as a variable or a literal, the client's error.
    for until in ("2030-01-01T00:00:00", "tomorrow", "2030-13-45T00:00:00Z"):
        error = await gql.error(MUTE, {"id": conversation, "until": until}, token=bob.token)
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error
        literal = f'mutation {{ muteConversation(conversationId: "{conversation}", until: "{until}") {{ muted }} }}'
        error = await gql.error(literal, token=bob.token)
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert (await gql.ok(CONVERSATION, {"id": conversation}, token=bob.token))["conversation"]["muted"] is False


async def test_a_gone_subscription_is_removed_and_a_failing_service_retried(
    served: ServedApp, gql: GraphQLClient, push_service: FakePushService
) -> None:
    alice, bob = await register(gql), await register(gql)
    gone, flaky = push_service.subscription(f"gone-{bob.id}"), push_service.subscription(f"flaky-{bob.id}")
    push_service.answers[f"gone-{bob.id}"] = [410]
    push_service.answers[f"flaky-{bob.id}"] = [503, 429]
    await subscribe(gql, bob, gone)
    await subscribe(gql, bob, flaky)
    await send(gql, alice, "are you there?", to=bob)
    attempts = await push_service.wait_for(f"flaky-{bob.id}", 3)
    await all_handled(served)
    assert [decrypt(a, flaky)["preview"] for a in attempts] == ["are you there?"] * 3
    assert len(push_service.to(f"gone-{bob.id}")) == 1
    # The 410 removed it: nothing to unregister any more, and the next message skips it.
    assert (await gql.ok(UNREGISTER_PUSH, {"endpoint": gone.endpoint}, token=bob.token)) == {
        "unregisterPushSubscription": False}
    await send(gql, alice, "again", to=bob)
    await push_service.wait_for(f"flaky-{bob.id}", 4)
    await all_handled(served)
    assert len(push_service.to(f"gone-{bob.id}")) == 1


async def test_a_stalled_push_service_does_not_hold_up_sending(
    served: ServedApp, gql: GraphQLClient, push_service: FakePushService
) -> None:
    alice, bob = await register(gql), await register(gql)
    name = f"slow-{bob.id}"
    push_service.stall[name] = asyncio.Event()  # answers after 5 s unless released
    await subscribe(gql, bob, push_service.subscription(name))
    await send(gql, alice, "one", to=bob)
    await push_service.wait_for(name)  # the push service holds that request now
    second = await send(gql, alice, "two", to=bob)
    assert second["id"] and name not in push_service.answered  # sent while the push service still stalls
    push_service.stall[name].set()
    await push_service.wait_for(name, 2)
    await all_handled(served)


async def test_subscription_input_is_checked(served: ServedApp, gql: GraphQLClient,
                                             push_service: FakePushService) -> None:
    bob = await register(gql)
    good = push_service.subscription(f"checked-{bob.id}").as_input()
    key = (await gql.ok(VAPID_KEY, token=bob.token))["vapidPublicKey"]
    assert public_key_of(key).key_size == 256
    bad = {
        "endpoint": ["http://push.example.com/x", "ftp://127.0.0.1/x", "not a url", "https://", "",
                     "https://push.example.com:8443/x", "https://user:pw@push.example.com/x",
                     # The server POSTs there: nothing inside its own network.
                     "https://127.0.0.1/x", "https://10.0.0.8/x", "https://[::1]/x", "https://169.254.169.254/x",
                     "https://localhost/x", "https://redis/x", "https://push.internal/x", "https://printer.local/x",
                     "http://127.0.0.1:1:2/x"],
        "p256dh": [good["p256dh"][:-4], "A" * 87, good["p256dh"].replace("-", "+").replace("_", "/") + "+/", ""],
        "auth": [good["auth"] + "AAAA", "!!!!", ""],
    }
    for field, values in bad.items():
        for value in values:
            error = await gql.error(REGISTER_PUSH, {"input": {**good, field: value}}, token=bob.token)
            assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}, (field, value, error)
    error = await gql.error(REGISTER_PUSH, {"input": good})
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await gql.ok(REGISTER_PUSH, {"input": good}, token=bob.token))["registerPushSubscription"] is True
    assert (await gql.ok(UNREGISTER_PUSH, {"endpoint": good["endpoint"]}, token=bob.token)) == {
        "unregisterPushSubscription": True}
    public = {**good, "endpoint": "https://fcm.googleapis.com/fcm/send/abc:def"}  # accepted, then removed at once:
    assert (await gql.ok(REGISTER_PUSH, {"input": public}, token=bob.token))["registerPushSubscription"] is True
    assert (await gql.ok(UNREGISTER_PUSH, {"endpoint": public["endpoint"]}, token=bob.token)) == {
        "unregisterPushSubscription": True}  # the tests send nothing off this machine


async def test_each_user_keeps_the_newest_subscriptions_and_an_endpoint_has_one_owner(
    served: ServedApp, gql: GraphQLClient, push_service: FakePushService
) -> None:
    alice, bob = await register(gql), await register(gql)
    limit = 10  # PUSH_MAX_SUBSCRIPTIONS_PER_USER
    endpoints = [push_service.subscription(f"cap-{bob.id}-{i}") for i in range(limit + 1)]
    for subscription in endpoints:
        await subscribe(gql, bob, subscription)
    # The oldest went: unregistering it finds nothing; the newest are there.
    assert (await gql.ok(UNREGISTER_PUSH, {"endpoint": endpoints[0].endpoint}, token=bob.token)) == {
        "unregisterPushSubscription": False}
    # One browser, another user signed in: the endpoint is theirs now, and only theirs.
    await subscribe(gql, alice, endpoints[-1])
    assert (await gql.ok(UNREGISTER_PUSH, {"endpoint": endpoints[-1].endpoint}, token=bob.token)) == {
        "unregisterPushSubscription": False}
    for subscription in endpoints[1:-1]:
        assert (await gql.ok(UNREGISTER_PUSH, {"endpoint": subscription.endpoint}, token=bob.token)) == {
            "unregisterPushSubscription": True}


async def test_a_delivery_left_by_a_dead_instance_is_taken_over(
    served: ServedApp, gql: GraphQLClient, push_service: FakePushService
) -> None:
    alice, bob = await register(gql), await register(gql)
    sent = await send(gql, alice, "before bob subscribed", to=bob)
    await all_handled(served)
    subscription = push_service.subscription(f"takeover-{bob.id}")
    await subscribe(gql, bob, subscription)
    # An instance read the message's push entry and died before delivering it: in one MULTI,
    # so no live worker reads it first.
    client = aioredis.Redis.from_url(served.redis_url)
    stream = keys.push_stream(partition_of(sent["conversationId"]))
    async with client.pipeline(transaction=True) as pipe:
        pipe.xadd(stream, {"id": sent["id"], "conversation": sent["conversationId"]})
        pipe.xreadgroup(keys.PUSH_GROUP, "dead-instance", {stream: ">"}, count=1)
        _, [[_, [(entry_id, _)]]] = await pipe.execute()
    [pending] = await client.xpending_range(stream, keys.PUSH_GROUP, min="-", max="+", count=10)
    assert pending["consumer"] == b"dead-instance" and pending["message_id"] == entry_id
    [request] = await push_service.wait_for(f"takeover-{bob.id}")  # once idle for PUSH_CLAIM_IDLE_SECONDS
    assert decrypt(request, subscription)["messageId"] == sent["id"]
    await all_handled(served)
    assert await client.xpending(stream, keys.PUSH_GROUP) == {"pending": 0, "min": None, "max": None,
                                                                 "consumers": []}

    # An entry whose workers died again and again (handed out 6 times): dropped, not pushed forever.
    async with client.pipeline(transaction=True) as pipe:
        pipe.xadd(stream, {"id": sent["id"], "conversation": sent["conversationId"]})
        pipe.xreadgroup(keys.PUSH_GROUP, "dead-instance", {stream: ">"}, count=1)
        _, [[_, [(entry_id, _)]]] = await pipe.execute()
    for _ in range(5):
        await client.xclaim(stream, keys.PUSH_GROUP, "another-dead-instance", 0, [entry_id])
    await all_handled(served)
    assert len(push_service.to(f"takeover-{bob.id}")) == 1
    await client.aclose()
