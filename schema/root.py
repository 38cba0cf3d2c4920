"""Root operation types and the Schema. Fields delegate to `resolvers`; descriptions live here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, SchemaExtension, ValidationCache
from strawberry.types import ExecutionContext, Info

from resolvers import auth, users
from resolvers.context import Context
from schema.errors import translate_error
from schema.scalars import SCALAR_OVERRIDES
from schema.inputs import LoginInput, RegisterInput
from schema.types import AuthPayload, User, UserConnection

ContextInfo = Info[Context, None]


@strawberry.type
class Query:
    @strawberry.field(description="The authenticated user.")
    async def me(self, info: ContextInfo) -> User:
        return await users.me(info.context)

    @strawberry.field(description="Users in sign-up order, `first` (at most 200) after the cursor `after`.")
    async def users(
        self,
        info: ContextInfo,
        online_only: Annotated[
            bool | None, strawberry.argument(description="Only users who are online now.")
        ] = False,
        first: int | None = 100,
        after: str | None = None,
    ) -> UserConnection:
        return await users.list_users(
            info.context,
            online_only=bool(online_only),
            first=100 if first is None else first,
            after=after,
        )


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create an account and log in.")
    async def register(self, info: ContextInfo, input: RegisterInput) -> AuthPayload:
        return await auth.register(
            info.context, username=input.username, email=input.email, password=input.password
        )

    @strawberry.mutation(
        description="Log in by username or email. Unknown user and wrong password give the "
        "same UNAUTHENTICATED error."
    )
    async def login(self, info: ContextInfo, input: LoginInput) -> AuthPayload:
        return await auth.login(info.context, login=input.login, password=input.password)


class ChattergramSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        operation = execution_context.operation_name if execution_context else None
        for error in errors:
            translate_error(error, operation)


def build_schema(extensions: Sequence[type[SchemaExtension] | SchemaExtension] = ()) -> ChattergramSchema:
    """The schema; `extensions` are added by the edge (logging, metrics, limits)."""
    return ChattergramSchema(
        query=Query,
        mutation=Mutation,
        scalar_overrides=SCALAR_OVERRIDES,
        extensions=[ParserCache(maxsize=1024), ValidationCache(maxsize=1024), *extensions],
    )


schema = build_schema()
