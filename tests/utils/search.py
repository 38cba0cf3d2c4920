"""Search helpers shared by the in-process and the end-to-end search tests."""

from __future__ import annotations

import uuid
from typing import Any

from tests.utils.graphql import Account, GraphQLClient

SEARCH = """query S($q: String!, $first: Int, $partnerId: ID) {
  search(query: $q, first: $first, partnerId: $partnerId) {
    total
    hits {
      __typename
      ... on UserHit { user { id username } }
      ... on MessageHit { snippet message { id text senderId receiverId kind } }
    }
  }
}"""


def unique_word(prefix: str = "w") -> str:
    """A word no other test uses (letters only, so it tokenises as one term)."""
    return prefix + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


async def search(gql: GraphQLClient, user: Account, query: str, **variables: Any) -> dict[str, Any]:
    return (await gql.ok(SEARCH, {"q": query, **variables}, token=user.token))["search"]


def message_hits(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [h for h in result["hits"] if h["__typename"] == "MessageHit"]


def unique_name_with(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"
