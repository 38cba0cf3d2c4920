"""Use cases: who am I, list users."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis
from strawberry.dataloader import DataLoader

from resolvers.context import Context, Services
from resolvers.cursors import decode_cursor, encode_cursor, page_info
from resolvers.errors import InvalidInput, NotAuthenticated
from schema.types import User, UserConnection, UserEdge
from storage import presence, users
from storage.ids import is_valid_id
from storage.users import StoredUser

MAX_PAGE_SIZE = 200
USER_CURSOR = "user"


async def to_public_users(ctx: Context, stored: Sequence[StoredUser]) -> list[User]:
    return await public_users(ctx.services.redis, stored)


async def public_users(redis: Redis, stored: Sequence[StoredUser]) -> list[User]:
    """Schema users with their online flags, fetched in one Redis round-trip."""
    online = await presence.online_among(redis, [u.id for u in stored])
    return [
        User(
            id=u.id,  # type: ignore[arg-type]
            username=u.username,
            online=u.id in online,
            last_seen_at=u.last_seen_at,
            created_at=u.created_at,
        )
        for u in stored
    ]


def make_user_loader(services: Services) -> DataLoader[str, User | None]:
    """Batches the user lookups of one execution (message senders and receivers)."""

    async def load(user_ids: list[str]) -> list[User | None]:
        found = await users.get_users(user_ids)
        public = {u.id: u for u in await public_users(services.redis, list(found.values()))}
        return [public.get(user_id) for user_id in user_ids]

    return DataLoader(load_fn=load, cache=False)


async def me(ctx: Context) -> User:
    viewer_id = ctx.require_viewer()
    stored = await users.get_user(viewer_id)
    if stored is None:  # a valid token of an account that no longer exists
        raise NotAuthenticated("Authentication required: unknown user")
    return (await to_public_users(ctx, [stored]))[0]


async def list_users(ctx: Context, *, online_only: bool, first: int, after: str | None) -> UserConnection:
    ctx.require_viewer()
    if not 0 <= first <= MAX_PAGE_SIZE:
        raise InvalidInput(f"first must be between 0 and {MAX_PAGE_SIZE}", field="first")
    after_id = None
    if after is not None:
        after_id = decode_cursor(after, USER_CURSOR, field="after")
        if not is_valid_id(after_id):
            raise InvalidInput("Malformed cursor", field="after")
    only_ids = await presence.online_user_ids(ctx.services.redis) if online_only else None
    page = await users.list_users(first=first + 1, after=after_id, only_ids=only_ids)
    has_next = len(page) > first
    page = page[:first]
    public = await to_public_users(ctx, page)
    edges = [UserEdge(cursor=encode_cursor(USER_CURSOR, u.id), node=u) for u in public]
    return UserConnection(
        edges=edges,
        page_info=page_info(edges, has_previous_page=after_id is not None, has_next_page=has_next),
    )
