"""Rate limits per use case: which subject is counted, how many per window."""

from __future__ import annotations

from dataclasses import dataclass

from resolvers.errors import RateLimited
from storage.ratelimit import RateLimiter


@dataclass(frozen=True, slots=True)
class Rule:
    limit: int
    window_seconds: float

    @classmethod
    def parse(cls, text: str) -> Rule:
        """`"30/60"`: 30 requests per 60 seconds."""
        count, sep, seconds = text.partition("/")
        if not sep:
            raise ValueError(f"bad rate limit {text!r}: use <count>/<seconds>")
        rule = cls(int(count), float(seconds))
        if rule.limit < 1 or rule.window_seconds <= 0:
            raise ValueError(f"bad rate limit {text!r}: use <count>/<seconds>")
        return rule


@dataclass(frozen=True)
class RateLimits:
    enabled: bool
    send_message: Rule
    upload_audio: Rule
    search: Rule
    retry_transcription: Rule
    mark_read: Rule
    report_message: Rule
    register: Rule
    login: Rule
    login_free_failures: int
    login_failure_window_seconds: float
    login_max_backoff_seconds: float


def _limited(action: str, wait: float) -> RateLimited:
    seconds = max(1, int(wait + 0.999))
    return RateLimited(f"too many {action} requests: retry in {seconds} s", retryAfter=seconds)


async def enforce(limiter: RateLimiter, limits: RateLimits, action: str, subject: str) -> None:
    """RATE_LIMITED (with extensions.retryAfter) when `subject` exceeded the rule of `action`."""
    if not limits.enabled:
        return
    rule: Rule = getattr(limits, action)
    wait = await limiter.hit(action, subject, limit=rule.limit, window_seconds=rule.window_seconds)
    if wait > 0:
        raise _limited(action, wait)


def login_subject(ip: str, login: str) -> str:
    return f"{ip}|{login.strip().lower()[:254]}"


async def check_login(limiter: RateLimiter, limits: RateLimits, subject: str) -> None:
    if not limits.enabled:
        return
    wait = await limiter.login_wait(
        subject,
        free_failures=limits.login_free_failures,
        window_seconds=limits.login_failure_window_seconds,
        max_backoff_seconds=limits.login_max_backoff_seconds,
    )
    if wait > 0:
        raise _limited("login", wait)
