"""The one settings object, read from the environment (and `.env`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_JWT_SECRET_LENGTH = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    redis_url: str | None = None
    mongodb_url: str | None = None
    data_dir: Path = Path("data")
    # Dev mode is switched on by `chattergram serve` when it starts the embedded servers.
    dev_mode: bool = False

    jwt_secret: str | None = None
    jwt_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)

    # Messages newer than this stay in Redis too (fractions allowed, e.g. for tests).
    hot_window_days: float = Field(default=90.0, gt=0)
    hot_window_trim_seconds: float = Field(default=60.0, gt=0)
    # Outbox entries a dead consumer left pending are taken over after this idle time.
    outbox_claim_idle_seconds: float = Field(default=30.0, gt=0)
    presence_ttl_seconds: float = Field(default=30.0, gt=0)
    presence_heartbeat_seconds: float = Field(default=10.0, gt=0)

    # Voice messages
    stt_engine: Literal["whisper", "deepgram", "none"] = "whisper"
    whisper_model: str = "bundled:tiny.en"
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
    media_url_ttl_seconds: int = Field(default=3600, ge=10)

    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    # Graphiql and field suggestions in error messages; on by default, hardened later.
    graphiql: bool = True

    @model_validator(mode="after")
    def _check_deepgram(self) -> "Settings":
        if self.stt_engine == "deepgram" and not self.deepgram_api_key:
            raise ValueError("DEEPGRAM_API_KEY is required when STT_ENGINE=deepgram")
        return self

    @model_validator(mode="after")
    def _check_secret(self) -> "Settings":
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

    @property
    def mongodb_database(self) -> str:
        """Database named by the path of MONGODB_URL, `chattergram` when it has none."""
        path = urlsplit(self.mongodb_url or "").path.strip("/")
        return path or "chattergram"
