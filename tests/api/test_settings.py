from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.settings import Settings


def test_secret_required_outside_dev_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JWT_SECRET", raising=False)
    monkeypatch.delenv("DEV_MODE", raising=False)
    with pytest.raises(ValidationError, match="JWT_SECRET is required"):
        Settings(_env_file=None)
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(_env_file=None, jwt_secret="short")
    assert Settings(_env_file=None, dev_mode=True).jwt_secret is None


def test_database_name_comes_from_the_url_path() -> None:
    base = {"_env_file": None, "jwt_secret": "k" * 40}
    assert Settings(**base, mongodb_url="mongodb://h:1/mydb?x=1").mongodb_database == "mydb"
    assert Settings(**base, mongodb_url="mongodb://h:1").mongodb_database == "chattergram"


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", "e" * 40)
    monkeypatch.setenv("REDIS_URL", "redis://example:6379/0")
    settings = Settings(_env_file=None)
    assert settings.redis_url == "redis://example:6379/0" and settings.jwt_secret == "e" * 40


def test_trusted_proxies_must_be_addresses_or_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, lb.internal")
    with pytest.raises(ValidationError, match=r"'lb\.internal' is not an IP address or network"):
        Settings(_env_file=None, jwt_secret="k" * 40)
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, ::1")
    assert Settings(_env_file=None, jwt_secret="k" * 40).trusted_proxies == "10.0.0.0/8, ::1"
    assert Settings(_env_file=None, jwt_secret="k" * 40, trusted_proxies="").trusted_proxies == ""
