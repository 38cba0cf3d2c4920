from __future__ import annotations

import dataclasses
import uuid

import pytest
from argon2 import PasswordHasher
from pydantic import ValidationError
from pymongo import WriteConcern

from api.dev_servers import EmbeddedServers
from api.settings import Settings
from api.startup import archive_write_concern, password_hasher, rate_limits
from resolvers.limits import Rule
from storage.archive import ArchiveStore
from storage.cold import MessageDoc
from storage.connections import open_mongo
from storage.ids import id_timestamp_ms, new_id
from storage.records import StoredMessage
from tests.conftest import mongodb_url


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


def test_login_rate_limit_is_read_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"_env_file": None, "jwt_secret": "k" * 40}
    assert rate_limits(Settings(**base)).login == Rule(30, 60.0)
    monkeypatch.setenv("RATE_LIMIT_LOGIN", "5/10")
    assert rate_limits(Settings(**base)).login == Rule(5, 10.0)
    monkeypatch.setenv("RATE_LIMIT_LOGIN", "lots")
    with pytest.raises(ValidationError, match="RATE_LIMIT_LOGIN"):
        Settings(**base)


def test_password_hashing_costs_default_to_argon2s_recommendation(monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"_env_file": None, "jwt_secret": "k" * 40}
    default, recommended = password_hasher(Settings(**base)), PasswordHasher()
    assert (default.time_cost, default.memory_cost) == (recommended.time_cost, recommended.memory_cost)
    monkeypatch.setenv("PASSWORD_HASH_TIME_COST", "1")
    monkeypatch.setenv("PASSWORD_HASH_MEMORY_KIB", "2048")
    cheap = password_hasher(Settings(**base))
    assert (cheap.time_cost, cheap.memory_cost) == (1, 2048)
    assert cheap.hash("pw").startswith("$argon2id$v=19$m=2048,t=1,")
    monkeypatch.setenv("PASSWORD_HASH_MEMORY_KIB", "64")
    with pytest.raises(ValidationError, match="password_hash_memory_kib"):
        Settings(**base)


def test_archive_write_concern_is_majority_unless_set_to_1(monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"_env_file": None, "jwt_secret": "k" * 40}
    assert archive_write_concern(Settings(**base)) == WriteConcern(w="majority", j=True)
    monkeypatch.setenv("ARCHIVE_WRITE_CONCERN", "1")
    assert archive_write_concern(Settings(**base)) == WriteConcern(w=1, j=True)
    with pytest.raises(ValidationError, match="archive_write_concern"):
        Settings(**base, archive_write_concern="2")


@pytest.mark.parametrize("setting", ["majority", "1"])
async def test_the_embedded_mongodb_accepts_the_archive_write_concern(dev_servers: EmbeddedServers,
                                                                     setting: str) -> None:
    """SecantusDB presents itself as a one-node replica set: w=majority (journaled) is met."""
    database = f"write_concern_{uuid.uuid4().hex[:8]}"
    client = await open_mongo(mongodb_url(dev_servers, database), database)
    try:
        concern = archive_write_concern(Settings(_env_file=None, jwt_secret="k" * 40, archive_write_concern=setting))
        archive = ArchiveStore(client[database][MessageDoc.Settings.name].with_options(write_concern=concern))
        message_id = new_id()
        message = StoredMessage(id=message_id, kind="TEXT", conversation_id=new_id(), sender_id=new_id(),
                                receiver_id=new_id(), text="one",
                                sent_at_ms=id_timestamp_ms(message_id))
        await archive.upsert([message])  # the insert
        await archive.upsert([dataclasses.replace(message, text="two", rev=1)])  # the conditional replace
        assert (await archive.get(message_id) or message).text == "two"
    finally:
        await client.drop_database(database)
        await client.close()


def test_trusted_proxies_must_be_addresses_or_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, lb.internal")
    with pytest.raises(ValidationError, match=r"'lb\.internal' is not an IP address or network"):
        Settings(_env_file=None, jwt_secret="k" * 40)
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, ::1")
    assert Settings(_env_file=None, jwt_secret="k" * 40).trusted_proxies == "10.0.0.0/8, ::1"
    assert Settings(_env_file=None, jwt_secret="k" * 40, trusted_proxies="").trusted_proxies == ""
