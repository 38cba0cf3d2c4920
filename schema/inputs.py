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


@strawberry.input(description="A message to send. The sender is always the authenticated user.")
class SendMessageInput:
    receiver_id: strawberry.ID = strawberry.field(
        description="The user to send to (NOT_FOUND if there is none); yourself is allowed (notes to self)."
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
