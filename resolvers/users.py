"""Use cases: who am I, list users; users as others see them (with their online flag)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from strawberry.dataloader import DataLoader

from resolvers.context import Context
from resolvers.cursors import Page, decode_cursor, encode_cursor
from resolvers.errors import InvalidInput, NotAuthenticated
from resolvers.runtime import Runtime
from storage.ids import is_valid_id
from storage.users import StoredUser

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 200
USER_CURSOR = "user"


@dataclass(frozen=True, slots=True)
class UserView:
    """A stored user and whether they are online now."""

    user: StoredUser
    online: bool


def without_presence(user: StoredUser) -> UserView:
    """The user as someone in a block with them sees them: never online, never seen."""
    return UserView(user=dataclasses.replace(user, last_seen_at=None), online=False)


async def with_presence(runtime: Runtime, stored: Sequence[StoredUser], viewer_id: str | None = None) -> list[UserView]:
    """The users with their online flags, fetched in one Redis round-trip; as `viewer_id` sees
    them (those in a block with the viewer, either way, show no presence)."""
    online = await runtime.presence.online_among([u.id for u in stored])
    hidden = await runtime.blocks.hidden_from(viewer_id, [u.id for u in stored]) if viewer_id else set()
    return [without_presence(u) if u.id in hidden else UserView(user=u, online=u.id in online) for u in stored]


async def _online_users(runtime: Runtime, viewer_id: str, *, count: int, after: str | None) -> list[StoredUser]:
    """Up to `count` online users in id order after `after`, paged in Redis (never every
    online id); an online id without an account, or in a block with the viewer, is skipped."""
    found: list[StoredUser] = []
    while len(found) < count:
        ids = await runtime.presence.online_page(after=after, count=count - len(found))
        if not ids:
            break
        users = await runtime.users.get_many(ids)
        hidden = await runtime.blocks.hidden_from(viewer_id, ids)
        found += [users[i] for i in ids if i in users and i not in hidden]
        after = ids[-1]
    return found


def make_user_loader(runtime: Runtime, viewer: Callable[[], str | None] = lambda: None,
                     ) -> DataLoader[str, UserView | None]:
    """Batches the user lookups of one execution (message senders and receivers), as the
    `viewer()` of the moment sees them (a WebSocket's viewer is known only after connection_init)."""

    async def load(user_ids: list[str]) -> list[UserView | None]:
        found = await runtime.users.get_many(user_ids)
        views = {v.user.id: v for v in await with_presence(runtime, list(found.values()), viewer())}
        return [views.get(user_id) for user_id in user_ids]

    return DataLoader(load_fn=load, cache=False)


async def me(ctx: Context) -> UserView:
    viewer_id = ctx.require_viewer()
    stored = await ctx.runtime.users.get(viewer_id)
    if stored is None:  # a valid token of an account that no longer exists
        raise NotAuthenticated("Authentication required: unknown user")
    return (await with_presence(ctx.runtime, [stored]))[0]


async def list_users(ctx: Context, *, online_only: bool, first: int | None, after: str | None) -> Page[UserView]:
    viewer_id = ctx.require_viewer()
    first = DEFAULT_PAGE_SIZE if first is None else first  # an explicit null means the default
    if not 0 <= first <= MAX_PAGE_SIZE:
        raise InvalidInput(f"first must be between 0 and {MAX_PAGE_SIZE}", field="first")
    after_id = None
    if after is not None:
        after_id = decode_cursor(after, USER_CURSOR, field="after")
        if not is_valid_id(after_id):
            raise InvalidInput("Malformed cursor", field="after")
    runtime = ctx.runtime
    if online_only:
        page = await _online_users(runtime, viewer_id, count=first + 1, after=after_id)
    else:
        page = await runtime.users.page(first=first + 1, after=after_id)
    views = await with_presence(runtime, page[:first], viewer_id)
    return Page(
        items=views,
        cursors=[encode_cursor(USER_CURSOR, v.user.id) for v in views],
        has_previous_page=after_id is not None,
        has_next_page=len(page) > first,
    )
