"""scripts/check_lock.py (run by `make check`): the repository's locks agree with pyproject.toml,
and each kind of disagreement is caught."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_lock", ROOT / "scripts" / "check_lock.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


check_lock = _load()


def test_the_repository_locks_agree_with_pyproject() -> None:
    assert check_lock.problems(ROOT) == []


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    for name in ("pyproject.toml", *check_lock.LOCKS):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def edit(path: Path, change: Callable[[str], str]) -> None:
    before = path.read_text()
    after = change(before)
    assert after != before, "the edit changed nothing"
    path.write_text(after)


def test_a_new_dependency_that_is_not_locked(copy: Path) -> None:
    edit(copy / "pyproject.toml", lambda s: s.replace('"orjson>=3.13",', '"orjson>=3.13",\n    "left-pad>=1",'))
    assert check_lock.problems(copy) == [
        "requirements.lock: left-pad>=1 (pyproject.toml) is not locked",
        "requirements-dev.lock: left-pad>=1 (pyproject.toml) is not locked",
        "requirements-whisper-base.lock: left-pad>=1 (pyproject.toml) is not locked",
    ]


def test_a_specifier_the_lock_does_not_satisfy(copy: Path) -> None:
    edit(copy / "pyproject.toml", lambda s: s.replace('"orjson>=3.13"', '"orjson>=99"'))
    problems = check_lock.problems(copy)
    assert len(problems) == 3 and all("does not satisfy orjson>=99" in p for p in problems), problems


def test_a_removed_dependency_still_locked(copy: Path) -> None:
    edit(copy / "pyproject.toml", lambda s: s.replace('    "orjson>=3.13",\n', ""))
    assert check_lock.problems(copy) == [
        "requirements.lock: orjson is locked as a dependency of pyproject.toml, which no longer has it",
        "requirements-dev.lock: orjson is locked as a dependency of pyproject.toml, which no longer has it",
        "requirements-whisper-base.lock: orjson is locked as a dependency of pyproject.toml, which no longer has it",
    ]


def test_strawberry_and_uvicorn_must_be_exact(copy: Path) -> None:
    edit(copy / "pyproject.toml", lambda s: re.sub(r'"strawberry-graphql==[^"]+"', '"strawberry-graphql>=0.341"', s))
    assert check_lock.problems(copy) == [
        "pyproject.toml: pin strawberry-graphql exactly (==), not >=0.341",
    ]


def test_a_pin_without_hashes_and_locks_that_differ(copy: Path) -> None:
    def unhash_and_bump(text: str) -> str:
        return re.sub(r"^orjson==\S+ \\\n(    --hash=\S+( \\)?\n)+", "orjson==3.99.0\n", text, flags=re.M)

    edit(copy / "requirements-dev.lock", unhash_and_bump)
    problems = check_lock.problems(copy)
    assert "requirements-dev.lock: orjson has no --hash" in problems
    assert any(p.startswith("orjson is ") and "3.99.0 in requirements-dev.lock" in p for p in problems), problems


def test_a_missing_lock(copy: Path) -> None:
    (copy / "requirements-dev.lock").unlink()
    assert check_lock.problems(copy) == ["requirements-dev.lock is missing: run `make lock`"]
