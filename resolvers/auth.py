"""Use cases: register, log in, log out (this token or all), change the password."""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from resolvers.context import Context
from resolvers.errors import Conflict, InvalidInput, NotAuthenticated
from resolvers.limits import check_login, login_subject
from resolvers.passwords import PasswordHashing, hash_password, password_matches
from resolvers.users import UserView, with_presence
from storage.blocks import BlockStore
from storage.errors import EmailTaken, UsernameTaken
from storage.revocations import RevocationStore
from storage.users import Credentials, StoredUser, UserStore

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
# Deliberately simple: one @, a dotted domain, no spaces; RFC 5321 length limit.
EMAIL_PATTERN = re.compile(
    r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
MAX_EMAIL_LENGTH = 254
MIN_PASSWORD, MAX_PASSWORD = 8, 128
MAX_LOGIN_LENGTH = MAX_EMAIL_LENGTH
BAD_CREDENTIALS = "Invalid login or password"

log = logging.getLogger(__name__)


def validate_username(username: str) -> str:
    if not USERNAME_PATTERN.match(username):
        raise InvalidInput(
            "username must be 3-32 characters of letters, digits, '_', '.' or '-'",
            field="username",
        )
    return username


def validate_email(email: str) -> str:
    email = email.strip()
    if len(email) > MAX_EMAIL_LENGTH or not EMAIL_PATTERN.match(email):
        raise InvalidInput("email is not a valid email address", field="email")
    return email


def validate_password(password: str) -> str:
    length = len(unicodedata.normalize("NFC", password))
    if not MIN_PASSWORD <= length <= MAX_PASSWORD:
        raise InvalidInput(
            f"password must be {MIN_PASSWORD}-{MAX_PASSWORD} characters", field="password"
        )
    return password


@dataclass(frozen=True, slots=True)
class Session:
    """A token for the user who registered or logged in."""

    token: str
    expires_at: datetime
    user: UserView


async def _session(ctx: Context, user: StoredUser, generation: int = 0) -> Session:
    token, expires_at = ctx.runtime.tokens.issue(user.id, generation=generation)
    return Session(token=token, expires_at=expires_at, user=(await with_presence(ctx.runtime, [user]))[0])


async def register(ctx: Context, *, username: str, email: str, password: str) -> Session:
    await ctx.rate_limit("register", ctx.client_ip)
    username = validate_username(username)
    email = validate_email(email)
    password = validate_password(password)
    try:
        user = await ctx.runtime.users.create(
            username=username, email=email, password_hash=await hash_password(ctx.runtime.passwords, password)
        )
    except UsernameTaken:
        raise Conflict("username is already taken", field="username") from None
    except EmailTaken:
        raise Conflict("email is already registered", field="email") from None
    await note_new_account(ctx.runtime.revocations, ctx.runtime.blocks, user.id)
    return await _session(ctx, user)


async def note_new_account(revocations: RevocationStore, blocks: BlockStore, user_id: str) -> None:
    """What every request checks about a user (token generation, blocked set), known from the
    start instead of read from MongoDB on first use. Only a shortcut, so a Redis blip must not
    fail a registration that already happened: it is logged."""
    copies = await asyncio.gather(revocations.new_user(user_id), blocks.new_user(user_id), return_exceptions=True)
    for failed in (c for c in copies if isinstance(c, Exception)):
        log.warning("a new user's Redis copies were not written", extra={"user": user_id, "error": repr(failed)})


async def authenticate(users: UserStore, passwords: PasswordHashing, login: str, password: str) -> Credentials:
    """The user these credentials belong to; one error for unknown user and wrong password."""
    login = login.strip()
    credentials = (
        await users.find_credentials(login) if 0 < len(login) <= MAX_LOGIN_LENGTH else None
    )
    return await _checked(passwords, credentials, password)


async def _checked(passwords: PasswordHashing, credentials: Credentials | None, password: str) -> Credentials:
    # Hash checked even for an unknown login, so response time does not reveal which it was.
    verdict = await password_matches(
        passwords,
        credentials.password_hash if credentials else None, password[: MAX_PASSWORD * 4]
    )
    # `is not True`: only an awaited, positive verdict passes (a coroutine object would not).
    if verdict is not True or credentials is None:
        raise NotAuthenticated(BAD_CREDENTIALS)
    return credentials


async def login(ctx: Context, *, login: str, password: str) -> Session:
    """Attempts per IP are capped across names; failed attempts per IP + login name earn a
    growing back-off (RATE_LIMITED)."""
    await ctx.rate_limit("login", ctx.client_ip)  # first: a refused attempt costs no argon2 work
    credentials = await _limited_check(
        ctx, login, lambda: authenticate(ctx.runtime.users, ctx.runtime.passwords, login, password)
    )
    return await _session(ctx, credentials.user, credentials.token_generation)


async def _limited_check(ctx: Context, login: str, check: Callable[[], Awaitable[Credentials]]) -> Credentials:
    """Run a password check under login's back-off for (client IP, `login`): RATE_LIMITED while
    it lasts, a failure recorded, a success resetting it."""
    runtime = ctx.runtime
    limits = runtime.limits
    subject = login_subject(ctx.client_ip, login)
    await check_login(runtime.limiter, limits, subject)
    try:
        credentials = await check()
    except NotAuthenticated:
        if limits.enabled:
            await runtime.limiter.login_failed(subject, window_seconds=limits.login_failure_window_seconds)
        raise
    if limits.enabled:
        await runtime.limiter.login_succeeded(subject)
    return credentials


async def logout(ctx: Context) -> bool:
    """The token of this request stops working, on every instance (its WebSockets close)."""
    ctx.require_viewer()
    claims = ctx.claims
    assert claims is not None  # require_viewer passed
    await ctx.runtime.revocations.revoke_token(claims.user_id, claims.token_id, claims.expires_at)
    return True


async def logout_everywhere(ctx: Context) -> bool:
    """Every token of the viewer stops working, this one included."""
    await ctx.runtime.revocations.revoke_all(ctx.require_viewer())
    return True


async def change_password(ctx: Context, *, current_password: str, new_password: str) -> Session:
    """Check the current password (as login does: same hashing, same limits and back-off,
    same UNAUTHENTICATED), store the new one (register's rules), revoke every token the
    viewer holds and return a fresh one."""
    viewer_id = ctx.require_viewer()
    new_password = validate_password(new_password)
    await ctx.rate_limit("login", ctx.client_ip)  # first: a refused attempt costs no argon2 work
    runtime = ctx.runtime

    async def check() -> Credentials:
        credentials = await runtime.users.find_credentials_by_id(viewer_id)
        return await _checked(runtime.passwords, credentials, current_password)

    credentials = await _limited_check(ctx, f"id:{viewer_id}", check)
    new_hash = await hash_password(runtime.passwords, new_password)
    generation = await ctx.runtime.revocations.revoke_all(viewer_id, new_password_hash=new_hash)
    return await _session(ctx, credentials.user, generation)
