"""users(onlineOnly: true) pages through the online users in id order, each exactly once."""

from __future__ import annotations

from storage.connections import close_redis, open_redis
from storage.presence import PresenceTracker
from tests.utils.graphql import register
from tests.utils.in_process import InProcessApps

USERS = """query U($first: Int, $after: String) {
  users(onlineOnly: true, first: $first, after: $after) {
    edges { cursor node { id online } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def test_online_users_page_in_id_order_each_once(in_process_apps: InProcessApps) -> None:
    app = await in_process_apps.start()  # a Redis of its own: nobody else is online there
    redis = await open_redis(app.redis_url)
    try:
        async with app.client() as gql:
            viewer = await register(gql)
            users = [await register(gql) for _ in range(9)]
            presence = PresenceTracker(redis)  # the app's presence, as its WebSockets would register
            connections = {u.id: await presence.connect(u.id) for u in users}
            await presence.disconnect(users[4].id, connections[users[4].id])  # offline again: not listed
            online = sorted(u.id for u in users if u is not users[4])

            listed: list[str] = []
            after = None
            for _ in range(10):
                page = (await gql.ok(USERS, {"first": 3, "after": after}, token=viewer.token))["users"]
                assert all(edge["node"]["online"] for edge in page["edges"])
                listed += [edge["node"]["id"] for edge in page["edges"]]
                if not page["pageInfo"]["hasNextPage"]:
                    break
                after = page["pageInfo"]["endCursor"]
            assert listed == online
            empty = await gql.ok(USERS, {"first": 3, "after": page["edges"][-1]["cursor"]}, token=viewer.token)
            assert empty["users"] == {"edges": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}
    finally:
        await close_redis(redis)
