"""Group conversations live, over WebSocket, across two API instances: fan-out to every member,
nothing to outsiders, removal takes effect at once, typing and read receipts per member, and
/media refusing those who are (no longer) members."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from api.app_server import AppServer
from api.dev_servers import EmbeddedServers
from tests.utils.audio import speak, upload
from tests.utils.graphql import Account, GraphQLClient, register
from tests.utils.ws import Socket, connect, user_channel, wait_for_subscribers

CREATE = "mutation C($input: CreateGroupInput!) { createGroup(input: $input) { id } }"
SEND = "mutation S($input: SendMessageInput!) { sendMessage(input: $input) { id conversationId } }"
REMOVE = "mutation R($c: ID!, $u: ID!) { removeMember(conversationId: $c, userId: $u) { memberCount } }"
MARK_READ = """mutation M($c: ID!, $u: ID!) { markRead(conversationId: $c, upTo: $u) {
  unreadCount lastReadAt members { user { id } lastReadAt } } }"""
TYPING = "mutation T($c: ID!, $t: Boolean!) { setTyping(conversationId: $c, typing: $t) }"
UNREAD = "query Q($id: ID!) { conversation(id: $id) { unreadCount } }"
HISTORY = "query H($c: ID!) { history(conversationId: $c) { edges { node { id } } } }"
AUDIO_URL = "query A($id: ID!) { message(id: $id) { audio { url } } }"
MESSAGE_EVENTS = "subscription { messageEvents { type message { id conversationId senderId text } } }"
# What a client cache needs to update its conversation list without a refetch.
MESSAGE_EVENTS_WITH_COUNTS = """subscription { messageEvents { type message { id conversationId senderId text
  conversation { id unreadCount lastMessage { id } } } } }"""
CONVERSATION_EVENTS = "subscription { conversationEvents { type conversationId userId partnerId byUserId upTo } }"


def conversation_channel(user_id: str) -> str:
    return f"cg:events:conv:{user_id}"


async def message_event(socket: Socket) -> dict[str, Any]:
    return (await socket.next_payload())["data"]["messageEvents"]


async def conversation_event(socket: Socket) -> dict[str, Any]:
    return (await socket.next_payload())["data"]["conversationEvents"]


async def test_a_group_lives_across_instances_and_a_removed_member_stops_at_once(
    app: AppServer, second_app: AppServer, dev_servers: EmbeddedServers, tmp_path: Path
) -> None:
    a, b = app, second_app
    async with httpx.AsyncClient(timeout=30) as http:
        gql_a, gql_b = GraphQLClient(http, a.graphql_url), GraphQLClient(http, b.graphql_url)
        alice, bob, carol, mallory = [await register(gql_a) for _ in range(4)]
        group = (await gql_a.ok(CREATE, {"input": {"title": "Crew", "memberIds": [bob.id, carol.id]}},
                                token=alice.token))["createGroup"]["id"]
        on: dict[str, tuple[str, Account]] = {"alice": (a.ws_url, alice), "bob": (b.ws_url, bob),
                                               "carol": (b.ws_url, carol), "mallory": (a.ws_url, mallory)}
        async with (connect(on["alice"][0], alice.token) as alice_ws, connect(on["bob"][0], bob.token) as bob_ws,
                    connect(on["carol"][0], carol.token) as carol_ws,
                    connect(on["mallory"][0], mallory.token) as mallory_ws,
                    connect(b.ws_url, carol.token) as carol_events, connect(a.ws_url, alice.token) as alice_events,
                    connect(b.ws_url, bob.token) as bob_events):
            for socket in (alice_ws, bob_ws, mallory_ws):
                await socket.subscribe(MESSAGE_EVENTS)
            await carol_ws.subscribe(MESSAGE_EVENTS_WITH_COUNTS)
            for socket in (carol_events, alice_events, bob_events):
                await socket.subscribe(CONVERSATION_EVENTS)
            for user in (alice, bob, carol, mallory):
                await wait_for_subscribers(dev_servers.redis_url, user_channel(user.id))
            for user in (alice, bob, carol):
                await wait_for_subscribers(dev_servers.redis_url, conversation_channel(user.id))

            sent = (await gql_b.ok(SEND, {"input": {"conversationId": group, "text": "hello crew"}},
                                   token=bob.token))["sendMessage"]
            expected = {"id": sent["id"], "conversationId": group, "senderId": bob.id, "text": "hello crew"}
            for socket in (alice_ws, bob_ws):  # every member, on both instances
                assert await message_event(socket) == {"type": "CREATED", "message": expected}
            carols = await message_event(carol_ws)  # with her view of the conversation, for her cache
            assert carols == {"type": "CREATED", "message": {
                **expected, "conversation": {"id": group, "unreadCount": 1, "lastMessage": {"id": sent["id"]}}}}
            await mallory_ws.expect_silence(0.3)

            # Typing names who types; read receipts are per member.
            await gql_b.ok(TYPING, {"c": group, "t": True}, token=bob.token)
            for socket in (alice_events, carol_events):
                started = await conversation_event(socket)
                assert started == {"type": "TYPING_STARTED", "conversationId": group, "userId": bob.id,
                                   "partnerId": None, "byUserId": None, "upTo": None}
            assert (await gql_a.ok(UNREAD, {"id": group}, token=alice.token))["conversation"]["unreadCount"] == 1
            read = (await gql_b.ok(MARK_READ, {"c": group, "u": sent["id"]}, token=carol.token))["markRead"]
            assert read["unreadCount"] == 0 and read["lastReadAt"]
            assert {m["user"]["id"]: bool(m["lastReadAt"]) for m in read["members"]} == {
                alice.id: False, bob.id: False, carol.id: True}
            for socket in (alice_events, bob_events):
                receipt = await conversation_event(socket)
                assert (receipt["type"], receipt["userId"], receipt["upTo"]) == ("READ", carol.id, sent["id"])
            assert (await gql_a.ok(UNREAD, {"id": group}, token=alice.token))["conversation"]["unreadCount"] == 1

            # A voice message: members may play it; the URL stops working for a removed member.
            clip = speak("Meet at the harbour.", tmp_path, "ogg").read_bytes()
            audio = (await upload(http, a.graphql_url, alice.token, clip, "v.ogg", "audio/ogg"))["data"]["uploadAudio"]
            voice = (await gql_a.ok(SEND, {"input": {"conversationId": group, "audioId": audio["id"]}},
                                    token=alice.token))["sendMessage"]
            for socket in (alice_ws, bob_ws, carol_ws):
                assert (await message_event(socket))["message"]["id"] == voice["id"]
            carols_url = (await gql_b.ok(AUDIO_URL, {"id": voice["id"]}, token=carol.token))["message"]["audio"]["url"]
            assert (await http.get(carols_url)).status_code == 200

            # Removing carol takes effect at once: she is told, then hears nothing more.
            await gql_a.ok(REMOVE, {"c": group, "u": carol.id}, token=alice.token)
            removed = await conversation_event(carol_events)
            assert (removed["type"], removed["userId"], removed["byUserId"]) == ("MEMBER_REMOVED", carol.id, alice.id)
            after = (await gql_a.ok(SEND, {"input": {"conversationId": group, "text": "just us"}},
                                    token=alice.token))["sendMessage"]
            for socket in (alice_ws, bob_ws):
                assert (await message_event(socket))["message"]["id"] == after["id"]
            await carol_ws.expect_silence(0.3)
            await mallory_ws.expect_silence(0.1)
            assert (await http.get(carols_url)).status_code == 404
            for query, variables in ((HISTORY, {"c": group}), (UNREAD, {"id": group}),
                                     (AUDIO_URL, {"id": voice["id"]})):
                error = await gql_b.error(query, variables, token=carol.token)
                assert error["extensions"]["code"] == "NOT_FOUND", error
            send_anyway = await gql_b.error(SEND, {"input": {"conversationId": group, "text": "hey"}},
                                            token=carol.token)
            assert send_anyway["extensions"] == {"code": "NOT_FOUND", "field": "conversationId"}
