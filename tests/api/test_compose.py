"""Static checks of the production deployment files (Docker cannot run in CI).

Parses docker-compose.yml, the Caddyfile and the Dockerfile and asserts on actual values, so a
broken or drifted deployment config fails here rather than at `docker compose up`.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from api.cli import APP_SHUTDOWN_SECONDS, GRACEFUL_SHUTDOWN_SECONDS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
CADDYFILE = ROOT / "Caddyfile"

SERVICES = ("redis", "mongo", "api", "caddy")


@pytest.fixture(scope="module")
def compose() -> dict:
    assert COMPOSE_FILE.is_file(), f"missing {COMPOSE_FILE}"
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    assert isinstance(data.get("services"), dict), "docker-compose.yml has no services mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        result = {}
        for item in env:
            key, _, value = str(item).partition("=")
            result[key] = value
        return result
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _healthcheck_text(service: dict) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else str(test)


def _volume_mounts(service: dict) -> list[tuple[str | None, str]]:
    """(source, target) for each entry of a service's `volumes:`."""
    mounts = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            mounts.append((entry.get("source"), entry["target"]))
        else:
            parts = str(entry).split(":")
            if len(parts) == 1:
                mounts.append((None, parts[0]))  # anonymous volume
            else:
                mounts.append((parts[0], parts[1]))
    return mounts


def _is_named_volume(source: str | None) -> bool:
    return bool(source) and not source.startswith((".", "/", "~", "$"))


def _published_ports(service: dict) -> set[tuple[str, str]]:
    """(published, target) pairs."""
    pairs = set()
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            pairs.add((str(entry.get("published", "")), str(entry["target"])))
        else:
            spec = str(entry).split("/")[0]
            parts = spec.split(":")
            if len(parts) == 1:
                pairs.add(("", parts[0]))
            else:
                pairs.add((parts[-2], parts[-1]))
    return pairs


# --------------------------------------------------------------------------- compose: services


def test_three_services_exist(services: dict) -> None:
    missing = [name for name in SERVICES if name not in services]
    assert not missing, f"missing services: {missing}"


def test_redis_is_redis_open_source_8_pinned(services: dict) -> None:
    image = str(services["redis"].get("image", ""))
    name, _, tag = image.partition(":")
    # Redis Open Source 8 has the query engine (Search) and JSON built in; Redis Stack is end-of-life.
    assert name in ("redis", "docker.io/library/redis"), f"expected the redis:8 image, got {image!r}"
    match = re.fullmatch(r"(\d+)\.(\d+)(\.\d+)?(-[a-z0-9.]+)?", tag)
    assert match and int(match.group(1)) >= 8, f"pin redis to a minor version of 8 or later, got {image!r}"


def test_redis_healthcheck_requires_search_and_json(services: dict) -> None:
    # The redis:8 entrypoint loads the bundled modules only when the command starts with redis-server.
    assert _command(services["redis"])[:1] == ["redis-server"], services["redis"].get("command")
    hc = _healthcheck_text(services["redis"])
    assert "MODULE LIST" in hc and "search" in hc and "ReJSON" in hc, hc


def test_mongo_is_pinned_to_a_minor_version(services: dict) -> None:
    image = str(services["mongo"].get("image", ""))
    match = re.fullmatch(r"(?:docker\.io/library/)?mongo:(\d+)\.(\d+)(\.\d+)?", image)
    assert match and int(match.group(1)) >= 7, f"expected mongo:<major>.<minor>, got {image!r}"


def _command(service: dict) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(c) for c in command]


def test_mongo_runs_a_replica_set_initiated_by_its_healthcheck(services: dict) -> None:
    command = _command(services["mongo"])
    assert "--replSet" in command, f"mongod must run as a replica set: {command}"
    replica_set = command[command.index("--replSet") + 1]
    hc = _healthcheck_text(services["mongo"])
    assert "rs.initiate(" in hc and f"_id: '{replica_set}'" in hc, f"the healthcheck must initiate {replica_set}: {hc}"
    assert "host: 'mongo:27017'" in hc, "the member must be named as the API reaches it"
    assert "isWritablePrimary" in hc, "healthy only once the node is primary (the API writes at start-up)"
    url = urlsplit(_environment(services["api"])["MONGODB_URL"])
    assert f"replicaSet={replica_set}" in url.query, f"MONGODB_URL must name the replica set: {url.geturl()!r}"


def test_archive_writes_wait_for_a_majority(services: dict) -> None:
    assert _environment(services["api"]).get("ARCHIVE_WRITE_CONCERN") == "majority"


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_has_healthcheck(services: dict, name: str) -> None:
    hc = services[name].get("healthcheck")
    assert isinstance(hc, dict), f"{name} has no healthcheck"
    assert hc.get("disable") is not True, f"{name} healthcheck is disabled"
    test = hc.get("test")
    assert test, f"{name} healthcheck has no test"
    if isinstance(test, list):
        assert test[0] in ("CMD", "CMD-SHELL"), f"{name} healthcheck test must start with CMD/CMD-SHELL: {test!r}"
        assert len(test) > 1, f"{name} healthcheck test has no command"


def test_healthchecks_probe_the_right_thing(services: dict) -> None:
    redis_hc = _healthcheck_text(services["redis"])
    assert "redis-cli" in redis_hc and "ping" in redis_hc.lower()
    mongo_hc = _healthcheck_text(services["mongo"])
    assert "mongosh" in mongo_hc and "ping" in mongo_hc
    api_hc = _healthcheck_text(services["api"])
    assert "http://127.0.0.1:%s/healthz" in api_hc and "os.environ.get('PORT', '8000')" in api_hc, api_hc
    assert "curl" not in api_hc and "wget" not in api_hc, "python:slim has no curl/wget"


# --------------------------------------------------------------------------- compose: api


def test_api_builds_from_repo_root(services: dict) -> None:
    build = services["api"].get("build")
    if isinstance(build, dict):
        assert build.get("context") == ".", f"api build context must be '.', got {build!r}"
        assert build.get("dockerfile", "Dockerfile") == "Dockerfile"
    else:
        assert build == ".", f"api must build from '.', got {build!r}"
    assert DOCKERFILE.is_file(), "Dockerfile missing at repo root"


def test_only_the_proxy_publishes_ports(services: dict) -> None:
    assert not services["api"].get("ports"), "the API is reached through Caddy (TLS), not directly"
    assert {("80", "80"), ("443", "443")} <= _published_ports(services["caddy"]), services["caddy"].get("ports")


def test_workers_and_port_come_from_the_environment(services: dict) -> None:
    env = _environment(services["api"])
    assert re.fullmatch(r"\$\{WEB_CONCURRENCY:-\d+\}", env.get("WEB_CONCURRENCY", "")), env.get("WEB_CONCURRENCY")
    assert env.get("PORT") == "${PORT:-8000}"
    assert [str(p) for p in services["api"].get("expose") or []] == ["${PORT:-8000}"]


def _seconds(duration: str) -> float:
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"bad duration {duration!r}"
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 0.000001}
    return sum(float(n) * scale[u] for n, u in parts)


def test_stop_grace_period_covers_the_shutdown_budget(services: dict) -> None:
    budget = GRACEFUL_SHUTDOWN_SECONDS + APP_SHUTDOWN_SECONDS
    grace = services["api"].get("stop_grace_period")
    assert grace and _seconds(str(grace)) >= budget, f"stop_grace_period {grace!r} < the app's {budget} s budget"


def test_caddy_terminates_tls_in_front_of_the_api(services: dict) -> None:
    caddy = services["caddy"]
    assert re.fullmatch(r"caddy:\d+\.\d+(\.\d+)?", str(caddy.get("image", ""))), caddy.get("image")
    mounts = dict((t, s) for s, t in _volume_mounts(caddy))
    assert mounts.get("/etc/caddy/Caddyfile") == "./Caddyfile", "mount the repository's Caddyfile"
    assert _is_named_volume(mounts.get("/data")), "Caddy's local CA and certificates need a named volume"
    assert _environment(caddy).get("API_UPSTREAM") == "api:${PORT:-8000}"
    assert (caddy["depends_on"]["api"] or {}).get("condition") == "service_healthy"

    assert CADDYFILE.is_file(), "missing Caddyfile"
    lines = [line.split("#", 1)[0].strip() for line in CADDYFILE.read_text().splitlines()]
    assert "tls internal" in lines, "local certificates: `tls internal`"
    assert any(re.fullmatch(r"reverse_proxy \{\$API_UPSTREAM(:api:\d+)?\}( \{)?", line) for line in lines), lines


def test_only_caddy_is_a_trusted_proxy(services: dict) -> None:
    address = services["caddy"]["networks"]["default"]["ipv4_address"]
    assert _environment(services["api"]).get("TRUSTED_PROXIES") == address


def test_datastores_not_published_on_all_interfaces(services: dict) -> None:
    for name in ("redis", "mongo"):
        for entry in services[name].get("ports") or []:
            host_ip = entry.get("host_ip") if isinstance(entry, dict) else (
                str(entry).split(":")[0] if str(entry).count(":") == 2 else None
            )
            assert host_ip == "127.0.0.1", f"{name} port {entry!r} must be bound to 127.0.0.1 only"


def test_api_waits_for_healthy_datastores(services: dict) -> None:
    depends = services["api"].get("depends_on")
    assert isinstance(depends, dict), "api depends_on must use the long form with conditions"
    for dep in ("redis", "mongo"):
        assert dep in depends, f"api does not depend on {dep}"
        assert (depends[dep] or {}).get("condition") == "service_healthy", f"api must wait for {dep} to be healthy"


def test_api_redis_url_points_at_redis_service(services: dict) -> None:
    url = urlsplit(_environment(services["api"]).get("REDIS_URL", ""))
    assert url.scheme in ("redis", "rediss"), f"bad REDIS_URL scheme: {url.geturl()!r}"
    assert url.hostname == "redis", f"REDIS_URL must point at the redis service, got {url.geturl()!r}"
    assert (url.port or 6379) == 6379


def test_api_mongodb_url_points_at_mongo_service(services: dict) -> None:
    url = urlsplit(_environment(services["api"]).get("MONGODB_URL", ""))
    assert url.scheme == "mongodb", f"bad MONGODB_URL scheme: {url.geturl()!r}"
    assert url.hostname == "mongo", f"MONGODB_URL must point at the mongo service, got {url.geturl()!r}"
    assert (url.port or 27017) == 27017
    assert url.path.lstrip("/") == "chattergram", f"MONGODB_URL database must be 'chattergram', got {url.path!r}"


def test_api_jwt_secret_is_required(services: dict) -> None:
    value = _environment(services["api"]).get("JWT_SECRET", "")
    assert re.fullmatch(r"\$\{JWT_SECRET:?\?[^}]+\}", value), (
        f"JWT_SECRET must be required via ${{JWT_SECRET:?message}}, got {value!r}"
    )


def test_api_environment_defaults(services: dict) -> None:
    env = _environment(services["api"])
    assert env.get("STT_ENGINE") == "${STT_ENGINE:-whisper}"
    assert env.get("DEEPGRAM_API_KEY") == "${DEEPGRAM_API_KEY:-}"
    assert env.get("HOT_WINDOW_DAYS") == "${HOT_WINDOW_DAYS:-90}"
    assert env.get("RATE_LIMITS") == "${RATE_LIMITS:-on}"


@pytest.mark.parametrize("name", SERVICES)
def test_services_restart(services: dict, name: str) -> None:
    assert services[name].get("restart") == "unless-stopped"


# --------------------------------------------------------------------------- compose: persistence


def test_redis_enables_appendonly(services: dict) -> None:
    redis = services["redis"]
    command = redis.get("command") or ""
    if isinstance(command, list):
        command = " ".join(map(str, command))
    args = f"{command} {_environment(redis).get('REDIS_ARGS', '')}"
    assert re.search(r"--appendonly\s+yes\b", args), f"redis must run with --appendonly yes, got {args.strip()!r}"


@pytest.mark.parametrize(("name", "target"), [("redis", "/data"), ("mongo", "/data/db"), ("caddy", "/data")])
def test_datastores_use_named_volumes(services: dict, name: str, target: str) -> None:
    sources = {t: s for s, t in _volume_mounts(services[name])}
    assert target in sources, f"{name} has no volume at {target}"
    assert _is_named_volume(sources[target]), f"{name} {target} should be a named volume, got {sources[target]!r}"


def test_named_volumes_declared_at_top_level(compose: dict, services: dict) -> None:
    declared = set((compose.get("volumes") or {}).keys())
    used = {
        source
        for service in services.values()
        for source, _ in _volume_mounts(service)
        if _is_named_volume(source)
    }
    assert used, "no named volumes used at all"
    assert used <= declared, f"volumes used but not declared at top level: {sorted(used - declared)}"
    assert declared <= used, f"volumes declared but never mounted: {sorted(declared - used)}"


# --------------------------------------------------------------------------- Dockerfile


def test_the_api_settings_accept_the_compose_environment(services: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every value compose gives the API (defaults filled in) is one Settings accepts."""
    from api.settings import Settings

    for name, value in _environment(services["api"]).items():
        value = re.sub(r"\$\{(\w+):-([^}]*)\}", r"\2", value)
        value = re.sub(r"\$\{(\w+):\?[^}]*\}", "x" * 48, value)
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    assert settings.archive_write_concern == "majority"
    assert settings.mongodb_database == "chattergram"
    assert settings.database_urls() == ("redis://redis:6379/0", "mongodb://mongo:27017/chattergram?replicaSet=rs0")
