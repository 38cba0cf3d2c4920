"""Input types of the public schema."""

from __future__ import annotations

import strawberry


@strawberry.input(description="A new account.")
class RegisterInput:
    username: str = strawberry.field(
        description="3-32 characters of A-Z, a-z, 0-9, '_', '.', '-'; unique ignoring case."
    )
    email: str = strawberry.field(
        description="A valid email address, at most 254 characters; unique ignoring case. Never shown "
        "to other users."
    )
    password: str = strawberry.field(
        description="8-128 characters; only a salted argon2id hash of it is stored."
    )


@strawberry.input(description="Credentials; `login` is the username or the email address.")
class LoginInput:
    login: str = strawberry.field(description="Your username or email address, ignoring case.")
    password: str = strawberry.field(description="Your password.")


@strawberry.input(
    description="A message to send. The sender is always the authenticated user. Give exactly one of "
    "`conversationId` and `receiverId`."
)
class SendMessageInput:
    conversation_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="A conversation you are a member of (NOT_FOUND otherwise): every member receives it.",
    )
    receiver_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="A user (NOT_FOUND if there is none): sends in your DIRECT conversation with them, made "
        "by the first message. Yourself is allowed (notes to self).",
    )
    text: str | None = strawberry.field(
        default=None,
        description="1-4,000 characters after trimming (Unicode NFC). Exactly one of text and audioId.",
    )
    audio_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="An upload of yours (uploadAudio) not sent yet: makes a VOICE message whose "
        "transcript arrives later as an UPDATED event.",
    )
    client_id: str | None = strawberry.field(
        default=None,
        description="Your idempotency key (1-128 printable characters): resending it returns the "
        "first message instead of creating a second. Use a fresh one (e.g. a UUID) per message.",
    )
    reply_to_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Reply to (quote) this message: it must be in the same conversation (NOT_FOUND naming "
        "replyToId otherwise). Its current state shows as `replyTo`.",
    )


@strawberry.input(description="A new group; you become its OWNER.")
class CreateGroupInput:
    title: str = strawberry.field(description="1-100 characters after trimming (Unicode NFC).")
    member_ids: list[strawberry.ID] = strawberry.field(
        description="The other members (duplicates and your own ID are ignored); all must exist "
        "(NOT_FOUND naming memberIds). With you, at most MAX_GROUP_MEMBERS (256 by default)."
    )
