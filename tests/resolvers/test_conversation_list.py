"""The conversation list over HTTP, at its edges."""

from __future__ import annotations

from tests.utils.graphql import GraphQLClient, register

LIST = "query { conversations { edges { node { id } } pageInfo { hasNextPage } } }"


async def test_a_new_user_has_an_empty_conversation_list(gql: GraphQLClient) -> None:
    newcomer = await register(gql)
    data = await gql.ok(LIST, token=newcomer.token)
    assert data["conversations"] == {"edges": [], "pageInfo": {"hasNextPage": False}}
