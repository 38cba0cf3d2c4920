"""The one settings object, read from the environment (and `.env`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from strawberry.http.websocket_origin import normalize_allowed_origins

from push.crypto import load_private_key
from resolvers.context import parse_trusted_proxies
from resolvers.limits import Rule

MIN_JWT_SECRET_LENGTH = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    redis_url: str | None = None
    # Redis connections per API process: at least the requests one process serves at once.
    redis_max_connections: int = Field(default=512, ge=8)
    # A request's line and headers must arrive within this time (slow-client protection).
    http_header_timeout_seconds: float = Field(default=10.0, gt=0)
    # A request body that stops arriving for this long before it is complete gets 408.
    http_body_timeout_seconds: float = Field(default=30.0, gt=0)
    # A request head (line and headers) larger than this, or with more header lines, gets 431.
    http_max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    http_max_headers: int = Field(default=100, ge=10)
    mongodb_url: str | None = None
    # Archive writes wait for a majority of the replica set ("1": the primary alone); journaled either way.
    archive_write_concern: Literal["majority", "1"] = "majority"
    data_dir: Path = Path("data")
    # Where the web client's files are (the checkout's web/ folder by default).
    web_dir: Path | None = None
    # Dev mode is switched on by `chattergram serve` when it starts the embedded servers.
    dev_mode: bool = False

    jwt_secret: str | None = None
    jwt_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    # Revocations reach every instance at once over pub/sub; a process trusts its cache while that
    # channel has proven within this long that it delivers, so this bounds a lost notice.
    revocation_cache_seconds: float = Field(default=5.0, ge=0)
    # How many users one may block; a process remembers who blocked whom this long (changes
    # reach every instance at once over pub/sub, this bounds a lost notice).
    max_blocked_users: int = Field(default=1000, ge=1, le=100_000)
    block_cache_seconds: float = Field(default=60.0, ge=0)

    # Messages newer than this stay in Redis too (fractions allowed, e.g. for tests).
    hot_window_days: float = Field(default=90.0, gt=0)
    max_group_members: int = Field(default=256, ge=2, le=10_000)
    # How long after sending a message its sender may edit it; unset: no limit.
    edit_window_seconds: float | None = Field(default=None, gt=0)
    hot_window_trim_seconds: float = Field(default=60.0, gt=0)
    # Outbox entries a dead consumer left pending are taken over after this idle time.
    outbox_claim_idle_seconds: float = Field(default=30.0, gt=0)
    presence_ttl_seconds: float = Field(default=30.0, gt=0)
    presence_heartbeat_seconds: float = Field(default=10.0, gt=0)

    # Voice messages
    stt_engine: Literal["whisper", "deepgram", "none"] = "whisper"
    whisper_model: str = "bundled:tiny.en"
    # Decoding (chosen by WER and RTF, `make bench-stt`): beam width, skipping silence with
    # Silero VAD, decoding again hotter when a result looks like a loop, and a prompt for style.
    whisper_beam_size: int = Field(default=5, ge=1, le=10)
    whisper_vad_filter: bool = True
    whisper_temperature_fallback: bool = True
    whisper_initial_prompt: str | None = Field(default=None, max_length=500)
    deepgram_api_key: str | None = None
    deepgram_url: str = "https://api.deepgram.com"
    deepgram_model: str = "nova-2"
    deepgram_timeout_seconds: float = Field(default=30.0, gt=0)
    max_audio_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    max_audio_seconds: float = Field(default=300.0, gt=0)
    transcription_concurrency: int = Field(default=1, ge=1)
    transcription_max_attempts: int = Field(default=3, ge=1)
    transcription_retry_seconds: float = Field(default=2.0, gt=0)
    transcription_claim_idle_seconds: float = Field(default=60.0, gt=0)
    # A job handed out this often without being finished (its workers died) is FAILED.
    transcription_max_deliveries: int = Field(default=5, ge=1)
    media_url_ttl_seconds: int = Field(default=3600, ge=10)
    # Uploads never sent are deleted after this long.
    upload_ttl_seconds: float = Field(default=86400, gt=0)
    # A send's claim on an upload with no message after this long (the send crashed) is given back.
    upload_claim_grace_seconds: float = Field(default=600, gt=0)
    upload_sweep_seconds: float = Field(default=300, gt=0)

    # Rate limits ("<count>/<seconds>"), shared by all instances through Redis.
    rate_limits: Literal["on", "off"] = "on"
    rate_limit_send_message: str = "120/60"
    rate_limit_upload_audio: str = "20/60"
    rate_limit_search: str = "60/60"
    rate_limit_retry_transcription: str = "10/60"
    rate_limit_mark_read: str = "120/60"
    rate_limit_report_message: str = "10/600"
    rate_limit_register: str = "20/3600"
    # Login attempts per client IP across all login names (bounds password checks per IP).
    rate_limit_login: str = "30/60"
    login_free_failures: int = Field(default=5, ge=1)
    login_failure_window_seconds: float = Field(default=900, gt=0)
    login_max_backoff_seconds: float = Field(default=900, gt=0)
    # Password hashes computed at once per process (argon2 is CPU- and memory-heavy).
    password_hash_concurrency: int = Field(default=2, ge=1)
    # argon2id cost: the library's recommended defaults; the test suite lowers them (same code paths).
    password_hash_time_cost: int = Field(default=3, ge=1)
    password_hash_memory_kib: int = Field(default=65536, ge=1024)

    # GraphQL and WebSocket limits
    max_query_depth: int = Field(default=12, ge=2)
    max_aliases: int = Field(default=30, ge=1)
    max_query_tokens: int = Field(default=2000, ge=10)
    max_json_body_bytes: int = Field(default=256 * 1024, ge=1024)
    max_subscriptions_per_connection: int = Field(default=100, ge=1)
    websocket_init_timeout_seconds: float = Field(default=10, gt=0)
    websocket_max_message_bytes: int = Field(default=64 * 1024, ge=1024)
    # Comma-separated origins whose pages may use the API (CORS and WebSocket handshakes); empty = none.
    cors_origins: str = ""
    # Comma-separated request headers such pages may send (CORS preflight).
    cors_allow_headers: str = "authorization,content-type"
    # Comma-separated proxy IPs/CIDRs whose X-Forwarded-For names the client; empty = none.
    trusted_proxies: str = ""
    jwt_audience: str | None = None
    jwt_issuer: str | None = None

    # Web Push (push/): unset = on in dev mode (keys generated into DATA_DIR), off otherwise.
    push: Literal["on", "off"] | None = None
    # The VAPID key: a PEM P-256 private key, or its raw 32 bytes in base64url.
    vapid_private_key: str | None = None
    # Who runs this server, for push services' operators: a mailto: or https: URL.
    vapid_subject: str | None = None
    # How long a push service keeps a notification for a device that is offline (TTL header).
    push_ttl_seconds: int = Field(default=86400, ge=0, le=28 * 86400)
    push_concurrency: int = Field(default=16, ge=1)
    push_max_attempts: int = Field(default=5, ge=1)
    push_retry_seconds: float = Field(default=1.0, gt=0)
    push_timeout_seconds: float = Field(default=10.0, gt=0)
    push_claim_idle_seconds: float = Field(default=60.0, gt=0)
    push_max_subscriptions_per_user: int = Field(default=10, ge=1)
    # Tests only: also accept http:// subscription endpoints on the loopback (a local push service).
    push_allow_loopback_http: bool = False

    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    # Graphiql and field suggestions in error messages; on by default, hardened later.
    graphiql: bool = True

    @model_validator(mode="after")
    def _check_rate_limits(self) -> Settings:
        for name in ("send_message", "upload_audio", "search", "retry_transcription", "mark_read", "report_message",
                     "register", "login"):
            value = getattr(self, f"rate_limit_{name}")
            try:
                Rule.parse(value)
            except ValueError:
                raise ValueError(f"RATE_LIMIT_{name.upper()} must look like <count>/<seconds>, not {value!r}") from None
        return self

    @model_validator(mode="after")
    def _check_trusted_proxies(self) -> Settings:
        parse_trusted_proxies(self.trusted_proxies)  # its ValueError names the bad entry
        return self

    @model_validator(mode="after")
    def _check_origins(self) -> Settings:
        try:  # a typo fails at start-up, not later in a browser
            _ = self.allowed_origins
        except ValueError as exc:
            raise ValueError(f"CORS_ORIGINS: {exc}") from None
        return self

    @model_validator(mode="after")
    def _check_deepgram(self) -> Settings:
        if self.stt_engine == "deepgram" and not self.deepgram_api_key:
            raise ValueError("DEEPGRAM_API_KEY is required when STT_ENGINE=deepgram")
        return self

    @model_validator(mode="after")
    def _check_secret(self) -> Settings:
        if self.dev_mode:
            return self
        if not self.jwt_secret:
            raise ValueError(
                "JWT_SECRET is required outside dev mode "
                f"(use at least {MIN_JWT_SECRET_LENGTH} random characters)"
            )
        if len(self.jwt_secret) < MIN_JWT_SECRET_LENGTH:
            raise ValueError(
                f"JWT_SECRET must be at least {MIN_JWT_SECRET_LENGTH} characters long"
            )
        return self

    @model_validator(mode="after")
    def _check_push(self) -> Settings:
        if not self.push_enabled:
            return self
        if self.vapid_private_key:
            try:
                load_private_key(self.vapid_private_key)
            except ValueError as exc:
                raise ValueError(f"VAPID_PRIVATE_KEY: {exc}") from None
        if self.dev_mode:
            return self
        if not self.vapid_private_key or not self.vapid_subject:
            raise ValueError("PUSH=on needs VAPID_PRIVATE_KEY and VAPID_SUBJECT outside dev mode")
        if not self.vapid_subject.startswith(("mailto:", "https://")):
            raise ValueError("VAPID_SUBJECT must be a mailto: or https: URL")
        return self

    @property
    def push_enabled(self) -> bool:
        return self.push == "on" if self.push is not None else self.dev_mode

    @property
    def allowed_origins(self) -> list[str]:
        """CORS_ORIGINS as browsers send them (lowercase, no default port): the one list both the
        CORS middleware and the WebSocket origin check use. Raises ValueError on a non-origin."""
        return sorted(normalize_allowed_origins(_items(self.cors_origins)))

    @property
    def allowed_headers(self) -> list[str]:
        return _items(self.cors_allow_headers)

    @property
    def mongodb_database(self) -> str:
        """Database named by the path of MONGODB_URL, `chattergram` when it has none."""
        path = urlsplit(self.mongodb_url or "").path.strip("/")
        return path or "chattergram"

    def database_urls(self) -> tuple[str, str]:
        """(REDIS_URL, MONGODB_URL); `chattergram serve` sets both when it starts embedded servers."""
        if not self.redis_url or not self.mongodb_url:
            raise ValueError(
                "REDIS_URL and MONGODB_URL must be set (chattergram serve starts embedded servers when they are not)"
            )
        return self.redis_url, self.mongodb_url


def _items(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]
