"""Group conversations over HTTP: creation, members and roles, and every bad input."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.utils.graphql import Account, GraphQLClient, register
from tests.utils.in_process import InProcessApps

FIELDS = "id kind title memberCount members { user { id } role joinedAt lastReadAt } partner { id }"
CREATE = f"""mutation C($input: CreateGroupInput!) {{ createGroup(input: $input) {{ {FIELDS} }} }}"""
ADD = f"""mutation A($c: ID!, $u: [ID!]!) {{ addMembers(conversationId: $c, userIds: $u) {{ {FIELDS} }} }}"""
REMOVE = f"""mutation R($c: ID!, $u: ID!) {{ removeMember(conversationId: $c, userId: $u) {{ {FIELDS} }} }}"""
RENAME = f"""mutation N($c: ID!, $t: String!) {{ renameGroup(conversationId: $c, title: $t) {{ {FIELDS} }} }}"""
ROLE = f"""mutation S($c: ID!, $u: ID!, $r: MemberRole!) {{
  setMemberRole(conversationId: $c, userId: $u, role: $r) {{ {FIELDS} }} }}"""
CONVERSATION = f"query Q($id: ID!) {{ conversation(id: $id) {{ {FIELDS} unreadCount }} }}"
SEND = """mutation S($input: SendMessageInput!) { sendMessage(input: $input) {
  id conversationId senderId receiverId receiver { id } text } }"""
HISTORY = """query H($c: ID, $p: ID) { history(conversationId: $c, partnerId: $p) {
  edges { node { id text conversationId } } } }"""
NODE = """query N($id: ID!) { node(id: $id) { __typename id
  ... on Conversation { kind title } ... on Message { text } ... on User { username } } }"""
LIST = "query { conversations { edges { node { id kind title unreadCount lastMessage { text } } } } }"


async def group(gql: GraphQLClient, owner: Account, *members: Account, title: str = "Trip") -> dict[str, Any]:
    data = await gql.ok(CREATE, {"input": {"title": title, "memberIds": [m.id for m in members]}}, token=owner.token)
    return data["createGroup"]


def roles(conversation: dict[str, Any]) -> dict[str, str]:
    return {m["user"]["id"]: m["role"] for m in conversation["members"]}


async def test_create_a_group_send_and_read_it_as_every_member(gql: GraphQLClient) -> None:
    alice, bob, carol = await register(gql), await register(gql), await register(gql)
    trip = await group(gql, alice, bob, carol, bob, alice, title="  Trip to Lisbon ")  # duplicates ignored
    assert trip["kind"] == "GROUP" and trip["title"] == "Trip to Lisbon" and trip["partner"] is None
    assert trip["memberCount"] == 3
    assert roles(trip) == {alice.id: "OWNER", bob.id: "MEMBER", carol.id: "MEMBER"}
    sent = (await gql.ok(SEND, {"input": {"conversationId": trip["id"], "text": "hi all"}}, token=bob.token))
    message = sent["sendMessage"]
    assert message["conversationId"] == trip["id"] and message["receiverId"] is None and message["receiver"] is None
    for member in (alice, bob, carol):
        history = (await gql.ok(HISTORY, {"c": trip["id"]}, token=member.token))["history"]["edges"]
        assert [e["node"]["text"] for e in history] == ["hi all"]
        node = (await gql.ok(NODE, {"id": trip["id"]}, token=member.token))["node"]
        assert node == {"__typename": "Conversation", "id": trip["id"], "kind": "GROUP", "title": "Trip to Lisbon"}
        listed = (await gql.ok(LIST, token=member.token))["conversations"]["edges"]
        assert [(e["node"]["id"], e["node"]["lastMessage"]["text"]) for e in listed] == [(trip["id"], "hi all")]
        unread = (await gql.ok(CONVERSATION, {"id": trip["id"]}, token=member.token))["conversation"]["unreadCount"]
        assert unread == (0 if member is bob else 1)


async def test_outsiders_see_nothing_of_a_group(gql: GraphQLClient) -> None:
    alice, bob, mallory = await register(gql), await register(gql), await register(gql)
    secret = await group(gql, alice, bob)
    message = (await gql.ok(SEND, {"input": {"conversationId": secret["id"], "text": "secret plan"}},
                            token=alice.token))["sendMessage"]
    for query, variables in ((CONVERSATION, {"id": secret["id"]}), (HISTORY, {"c": secret["id"]}),
                             ("query M($id: ID!) { message(id: $id) { id } }", {"id": message["id"]})):
        error = await gql.error(query, variables, token=mallory.token)
        assert error["extensions"]["code"] == "NOT_FOUND", error
    for node_id in (secret["id"], message["id"]):
        assert (await gql.ok(NODE, {"id": node_id}, token=mallory.token))["node"] is None
    assert (await gql.ok(NODE, {"id": alice.id}, token=mallory.token))["node"]["username"] == alice.username
    found = await gql.ok("query { search(query: \"secret\") { total hits { __typename } } }", token=mallory.token)
    assert found["search"] == {"total": 0, "hits": []}
    error = await gql.error(SEND, {"input": {"conversationId": secret["id"], "text": "let me in"}}, token=mallory.token)
    assert error["extensions"] == {"code": "NOT_FOUND", "field": "conversationId"}


async def test_roles_decide_who_adds_removes_renames_and_promotes(gql: GraphQLClient) -> None:
    owner, admin, member, other, newcomer = [await register(gql) for _ in range(5)]
    g = await group(gql, owner, admin, member, other)
    promoted = (await gql.ok(ROLE, {"c": g["id"], "u": admin.id, "r": "ADMIN"}, token=owner.token))["setMemberRole"]
    assert roles(promoted)[admin.id] == "ADMIN"

    def forbidden(error: dict[str, Any]) -> None:
        assert error["extensions"]["code"] == "FORBIDDEN", error

    forbidden(await gql.error(ADD, {"c": g["id"], "u": [newcomer.id]}, token=member.token))
    forbidden(await gql.error(RENAME, {"c": g["id"], "t": "Mine"}, token=member.token))
    forbidden(await gql.error(REMOVE, {"c": g["id"], "u": other.id}, token=member.token))
    forbidden(await gql.error(ROLE, {"c": g["id"], "u": member.id, "r": "ADMIN"}, token=admin.token))
    forbidden(await gql.error(REMOVE, {"c": g["id"], "u": owner.id}, token=admin.token))  # admins remove members only

    added = (await gql.ok(ADD, {"c": g["id"], "u": [newcomer.id, member.id]}, token=admin.token))["addMembers"]
    assert added["memberCount"] == 5  # a member already in is ignored
    renamed = (await gql.ok(RENAME, {"c": g["id"], "t": "Ours"}, token=admin.token))["renameGroup"]
    assert renamed["title"] == "Ours"
    removed = (await gql.ok(REMOVE, {"c": g["id"], "u": other.id}, token=admin.token))["removeMember"]
    assert other.id not in roles(removed)
    left = (await gql.ok(REMOVE, {"c": g["id"], "u": member.id}, token=member.token))["removeMember"]
    assert member.id not in roles(left) and left["memberCount"] == 3
    # Gone is gone: the group is NOT_FOUND for those no longer in it.
    for former in (other, member):
        error = await gql.error(CONVERSATION, {"id": g["id"]}, token=former.token)
        assert error["extensions"]["code"] == "NOT_FOUND"


async def test_ownership_passes_to_the_longest_standing_admin_else_member(gql: GraphQLClient) -> None:
    owner, first, second, late_admin = [await register(gql) for _ in range(4)]
    g = await group(gql, owner, first, second)
    await gql.ok(ADD, {"c": g["id"], "u": [late_admin.id]}, token=owner.token)
    await gql.ok(ROLE, {"c": g["id"], "u": late_admin.id, "r": "ADMIN"}, token=owner.token)
    after = (await gql.ok(REMOVE, {"c": g["id"], "u": owner.id}, token=owner.token))["removeMember"]
    assert roles(after) == {first.id: "MEMBER", second.id: "MEMBER", late_admin.id: "OWNER"}  # admin first
    after = (await gql.ok(REMOVE, {"c": g["id"], "u": late_admin.id}, token=late_admin.token))["removeMember"]
    assert roles(after) == {first.id: "OWNER", second.id: "MEMBER"}  # then the longest-standing member
    error = await gql.error(ROLE, {"c": g["id"], "u": first.id, "r": "MEMBER"}, token=first.token)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "role"}  # a group keeps an owner
    await gql.ok(REMOVE, {"c": g["id"], "u": second.id}, token=second.token)
    last = (await gql.ok(REMOVE, {"c": g["id"], "u": first.id}, token=first.token))["removeMember"]
    assert last["memberCount"] == 0  # archived, not deleted: nobody can reach it any more
    error = await gql.error(CONVERSATION, {"id": g["id"]}, token=first.token)
    assert error["extensions"]["code"] == "NOT_FOUND"


async def test_bad_input_gets_a_clear_error(gql: GraphQLClient) -> None:
    alice, bob = await register(gql), await register(gql)

    async def code_and_field(query: str, variables: dict[str, Any]) -> tuple[str, str | None]:
        error = await gql.error(query, variables, token=alice.token)
        return error["extensions"]["code"], error["extensions"].get("field")

    for title in ("", "   ", "x" * 101, "bad\x00title"):
        assert await code_and_field(CREATE, {"input": {"title": title, "memberIds": [bob.id]}}) == (
            "BAD_USER_INPUT", "title")
    unknown = "01" + "0" * 24
    assert await code_and_field(CREATE, {"input": {"title": "t", "memberIds": [bob.id, unknown]}}) == (
        "NOT_FOUND", "memberIds")
    assert await code_and_field(CREATE, {"input": {"title": "t", "memberIds": ["nope"]}}) == (
        "BAD_USER_INPUT", "memberIds")
    g = await group(gql, alice, bob)
    assert await code_and_field(ADD, {"c": g["id"], "u": [unknown]}) == ("NOT_FOUND", "userIds")
    assert await code_and_field(REMOVE, {"c": g["id"], "u": unknown}) == ("NOT_FOUND", "userId")
    assert await code_and_field(RENAME, {"c": unknown, "t": "x"}) == ("NOT_FOUND", "conversationId")
    both = {"input": {"conversationId": g["id"], "receiverId": bob.id, "text": "x"}}
    assert await code_and_field(SEND, both) == ("BAD_USER_INPUT", "conversationId")
    assert await code_and_field(SEND, {"input": {"text": "x"}}) == ("BAD_USER_INPUT", "conversationId")
    assert await code_and_field(HISTORY, {"c": g["id"], "p": bob.id}) == ("BAD_USER_INPUT", "conversationId")
    direct = (await gql.ok(SEND, {"input": {"receiverId": bob.id, "text": "hi"}}, token=alice.token))["sendMessage"]
    assert await code_and_field(ADD, {"c": direct["conversationId"], "u": [bob.id]}) == (
        "BAD_USER_INPUT", "conversationId")  # a DIRECT conversation has no members to manage


async def test_a_group_has_at_most_max_group_members(in_process_apps: InProcessApps) -> None:
    small = await in_process_apps.start(max_group_members=3)
    async with small.client() as gql:
        owner, *others = [await register(gql) for _ in range(4)]
        too_many = await gql.error(CREATE, {"input": {"title": "t", "memberIds": [o.id for o in others]}},
                                   token=owner.token)
        assert too_many["extensions"] == {"code": "BAD_USER_INPUT", "field": "memberIds"}
        g = await group(gql, owner, others[0])
        full = (await gql.ok(ADD, {"c": g["id"], "u": [others[1].id]}, token=owner.token))["addMembers"]
        assert full["memberCount"] == 3
        error = await gql.error(ADD, {"c": g["id"], "u": [others[2].id]}, token=owner.token)
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "userIds"}
        assert (await gql.ok(CONVERSATION, {"id": g["id"]}, token=owner.token))["conversation"]["memberCount"] == 3


async def test_simultaneous_first_messages_make_one_direct_conversation(gql: GraphQLClient) -> None:
    alice, bob = await register(gql), await register(gql)
    sent = await asyncio.gather(*[
        gql.ok(SEND, {"input": {"receiverId": to.id, "text": f"hi {i}"}}, token=by.token)
        for i in range(10) for by, to in ((alice, bob), (bob, alice))
    ])
    conversations = {s["sendMessage"]["conversationId"] for s in sent}
    assert len(conversations) == 1
    [direct] = conversations
    for viewer in (alice, bob):
        listed = (await gql.ok(LIST, token=viewer.token))["conversations"]["edges"]
        assert [e["node"]["id"] for e in listed] == [direct]
        by_id = (await gql.ok(HISTORY, {"c": direct}, token=viewer.token))["history"]["edges"]
        by_partner = (await gql.ok(HISTORY, {"p": (bob if viewer is alice else alice).id},
                                   token=viewer.token))["history"]["edges"]
        assert len(by_id) == 20 and by_id == by_partner
    node = (await gql.ok(NODE, {"id": direct}, token=alice.token))["node"]
    assert node == {"__typename": "Conversation", "id": direct, "kind": "DIRECT", "title": None}
