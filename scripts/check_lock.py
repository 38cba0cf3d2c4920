"""Fail when pyproject.toml and the lock files disagree (`make check` runs it; no network).

requirements.lock pins what the app needs (no extras: the Docker image), requirements-dev.lock
what `make` installs (the embedded, test and bench extras too), requirements-whisper-base.lock
the larger model `make bench-stt` installs, all with hashes, made by
`make lock` (pip-compile). They disagree when a dependency of pyproject.toml is missing from its
lock or pinned outside its specifier, when a lock still pins a direct dependency pyproject.toml
no longer has, when a pin carries no hash, or when the two locks pin one package differently.
strawberry-graphql and uvicorn must be pinned exactly in pyproject.toml (the app relies on
their internals).
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "chattergram"
APP_LOCK = "requirements.lock"  # the others extend it: a package they share is pinned alike
LOCKS = {APP_LOCK: (), "requirements-dev.lock": ("embedded", "test", "bench"),
         "requirements-whisper-base.lock": ("whisper-base",)}
EXACT = ("strawberry-graphql", "uvicorn")

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
_VIA_PROJECT = re.compile(rf"^#\s+(?:via\s+)?{PROJECT} \(pyproject\.toml\)")


@dataclass
class Lock:
    pins: dict[str, Version] = field(default_factory=dict)
    hashed: set[str] = field(default_factory=set)
    direct: set[str] = field(default_factory=set)


def parse_lock(text: str) -> Lock:
    """name==version entries, whether each has a --hash, and which pip-compile marks as wanted
    by the project itself (`# via chattergram (pyproject.toml)`)."""
    lock = Lock()
    current: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if match := _PIN.match(line):
            current = canonicalize_name(match.group(1))
            lock.pins[current] = Version(match.group(2))
        elif current and line.startswith("--hash="):
            lock.hashed.add(current)
        elif current and _VIA_PROJECT.match(line):
            lock.direct.add(current)
    return lock


def requirements(pyproject: dict, extras: tuple[str, ...]) -> list[Requirement]:
    project = pyproject["project"]
    found = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        found += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return [r for r in found if r.marker is None or r.marker.evaluate()]


def problems(root: Path = ROOT) -> list[str]:
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    found: list[str] = []
    for requirement in requirements(pyproject, ()):
        if canonicalize_name(requirement.name) in EXACT and not str(requirement.specifier).startswith("=="):
            found.append(f"pyproject.toml: pin {requirement.name} exactly (==), not {requirement.specifier or 'any'}")
    locks: dict[str, Lock] = {}
    for name, extras in LOCKS.items():
        path = root / name
        if not path.is_file():
            found.append(f"{name} is missing: run `make lock`")
            continue
        lock = locks[name] = parse_lock(path.read_text())
        wanted = {canonicalize_name(r.name): r for r in requirements(pyproject, extras)}
        for key, requirement in wanted.items():
            if key not in lock.pins:
                found.append(f"{name}: {requirement} (pyproject.toml) is not locked")
            elif not requirement.specifier.contains(lock.pins[key], prereleases=True):
                found.append(f"{name}: {key}=={lock.pins[key]} does not satisfy {requirement} (pyproject.toml)")
        for key in sorted(lock.direct - wanted.keys()):
            found.append(f"{name}: {key} is locked as a dependency of pyproject.toml, which no longer has it")
        for key in sorted(lock.pins.keys() - lock.hashed):
            found.append(f"{name}: {key} has no --hash")
    if (app := locks.get(APP_LOCK)) is not None:
        for name, other in locks.items():
            for key in sorted(app.pins.keys() & other.pins.keys()):
                if app.pins[key] != other.pins[key]:
                    found.append(f"{key} is {app.pins[key]} in {APP_LOCK} but {other.pins[key]} in {name}")
    return found


def main() -> int:
    found = problems()
    for problem in found:
        print(f"lock check: {problem}", file=sys.stderr)
    if found:
        print("lock check: pyproject.toml and the lock files disagree; run `make lock`", file=sys.stderr)
        return 1
    print("lock check: pyproject.toml and the lock files agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
