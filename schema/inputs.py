"""Input types of the public schema."""

from __future__ import annotations

import strawberry


@strawberry.input(description="A new account.")
class RegisterInput:
    username: str = strawberry.field(
        description="3-32 characters of A-Z, a-z, 0-9, '_', '.', '-'; unique ignoring case."
    )
    email: str = strawberry.field(description="A valid email address; unique ignoring case.")
    password: str = strawberry.field(description="8-128 characters.")


@strawberry.input(description="Credentials; `login` is the username or the email address.")
class LoginInput:
    login: str
    password: str
