"""The durable record in MongoDB (Beanie documents)."""

from __future__ import annotations

from datetime import UTC, datetime

from beanie import Document, Indexed
from pydantic import Field

from storage.ids import new_id


def utcnow() -> datetime:
    return datetime.now(UTC)


class UserDoc(Document):
    """A user account. Uniqueness ignoring case is enforced by unique indexes on the
    lower-cased copies, so concurrent registrations cannot both succeed."""

    id: str = Field(default_factory=new_id)  # type: ignore[assignment]
    username: str
    username_lower: Indexed(str, unique=True)  # type: ignore[valid-type]
    email: str
    email_lower: Indexed(str, unique=True)  # type: ignore[valid-type]
    password_hash: str
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime | None = None

    class Settings:
        name = "users"


DOCUMENT_MODELS: list[type[Document]] = [UserDoc]
