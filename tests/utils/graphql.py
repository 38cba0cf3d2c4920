"""A tiny GraphQL-over-HTTP client for tests, plus user factories."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

REGISTER = """
mutation Register($input: RegisterInput!) {
  register(input: $input) { token expiresAt user { id username online createdAt lastSeenAt } }
}"""
LOGIN = """
mutation Login($input: LoginInput!) {
  login(input: $input) { token expiresAt user { id username } }
}"""
ME = "query Me { me { id username online createdAt lastSeenAt } }"
PASSWORD = "correct horse battery"


class GraphQLClient:
    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self.client = client
        self.url = url

    async def raw(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.client.post(
            self.url, json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code in (200, 400), response.text
        return response.json()

    async def ok(self, query: str, variables: dict[str, Any] | None = None, token: str | None = None) -> dict[str, Any]:
        body = await self.raw(query, variables, token)
        assert not body.get("errors"), body
        return body["data"]

    async def error(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """The single error of a failing operation."""
        body = await self.raw(query, variables, token)
        assert body.get("errors"), body
        assert len(body["errors"]) == 1, body
        return body["errors"][0]


@dataclass
class Account:
    id: str
    username: str
    email: str
    password: str
    token: str


def unique_name(prefix: str = "u") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


async def register(gql: GraphQLClient, username: str | None = None, email: str | None = None,
                   password: str = PASSWORD) -> Account:
    username = username or unique_name()
    email = email or f"{username}@example.com"
    data = await gql.ok(REGISTER, {"input": {"username": username, "email": email, "password": password}})
    payload = data["register"]
    return Account(payload["user"]["id"], username, email, password, payload["token"])


SEND = """
mutation Send($input: SendMessageInput!) {
  sendMessage(input: $input) { id clientId kind text senderId receiverId sentAt sender { id } receiver { id } }
}"""
HISTORY = """
query History($partnerId: ID!, $last: Int, $before: String) {
  history(partnerId: $partnerId, last: $last, before: $before) {
    edges { cursor node { id text senderId receiverId sentAt } }
    pageInfo { hasPreviousPage hasNextPage startCursor endCursor }
  }
}"""
MESSAGE = "query M($id: ID!) { message(id: $id) { id text senderId receiverId } }"


async def send(gql: GraphQLClient, sender: Account, receiver: Account, text: str,
               client_id: str | None = None) -> dict[str, Any]:
    variables = {"input": {"receiverId": receiver.id, "text": text, "clientId": client_id}}
    return (await gql.ok(SEND, variables, token=sender.token))["sendMessage"]


async def all_history(gql: GraphQLClient, viewer: Account, partner: Account, page: int = 50) -> list[dict[str, Any]]:
    """Every message of a conversation, paging back `page` at a time; oldest first."""
    pages: list[list[dict[str, Any]]] = []
    before = None
    while True:
        data = (await gql.ok(HISTORY, {"partnerId": partner.id, "last": page, "before": before},
                             token=viewer.token))["history"]
        pages.append([edge["node"] for edge in data["edges"]])
        if not data["pageInfo"]["hasPreviousPage"]:
            break
        before = data["pageInfo"]["startCursor"]
    return [message for chunk in reversed(pages) for message in chunk]
