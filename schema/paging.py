"""Paging types shared by every list: page info and edges built from a resolver's page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import strawberry

from resolvers.cursors import Page

T = TypeVar("T")
E = TypeVar("E")


def utc(ms: int) -> datetime:
    """A UTC datetime from epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, UTC)


def at_ms(ms: int | None) -> datetime | None:
    """`utc(ms)` for a time that may not be set (None, or 0: never)."""
    return utc(ms) if ms else None


@strawberry.type(description="Where a page sits in its list (Relay-style); cursors are opaque strings.")
class PageInfo:
    has_previous_page: bool = strawberry.field(
        description="In `history`: older messages exist (page back with `before: startCursor`). In "
        "`users` and `conversations`: this page was asked for with `after`."
    )
    has_next_page: bool = strawberry.field(
        description="In `users` and `conversations`: more items follow (ask with `after: endCursor`). "
        "In `history`: this page was asked for with `before`, so newer messages exist."
    )
    start_cursor: str | None = strawberry.field(
        description="The cursor of the page's first item; null when the page is empty."
    )
    end_cursor: str | None = strawberry.field(
        description="The cursor of the page's last item; null when the page is empty."
    )

    @classmethod
    def of(cls, page: Page[Any]) -> PageInfo:
        return cls(
            has_previous_page=page.has_previous_page,
            has_next_page=page.has_next_page,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        )


def edges_of(page: Page[T], edge: Callable[[str, T], E]) -> list[E]:
    """The page's items as Relay edges, each with its cursor."""
    return [edge(cursor, item) for item, cursor in zip(page.items, page.cursors, strict=True)]
