"""Schema-first clients can consume Chattergram's SDL.

`schema.graphql` (written by `chattergram export-schema`) is fed to graphql-codegen with the
`typescript` plugin (`types.ts`, every schema type) and with the `client` preset over real
operations (tests/codegen/operations.ts: a query, two mutations, an upload among them, and a
subscription, written as a frontend writes them; output in `gql/`, with the scalar mappings
DateTime -> string and Upload -> File). Everything must type-check under `tsc --strict`,
including tests/codegen/usage.ts, which pins what the generated types promise (the scalar
mappings, required variables, enums as string unions) with `@ts-expect-error` where a mistake
must not compile.

The Node toolchain is pinned in tests/codegen/ (package.json + package-lock.json). It is
installed with `npm ci --prefer-offline` into <repo>/.cache/codegen/ (gitignored), and reinstalled
only when the lock file, package.json or the Node version changes, so repeated runs are fast and
need no network (a reinstall too, while npm's cache holds the locked tarballs).

Set CHATTERGRAM_SCHEMA_PATH to check another SDL file instead of <repo>/schema.graphql.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from graphql import parse
from graphql.language import (
    EnumTypeDefinitionNode,
    EnumTypeExtensionNode,
    InputObjectTypeDefinitionNode,
    InputObjectTypeExtensionNode,
    InterfaceTypeDefinitionNode,
    InterfaceTypeExtensionNode,
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    ScalarTypeDefinitionNode,
    ScalarTypeExtensionNode,
    UnionTypeDefinitionNode,
    UnionTypeExtensionNode,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
CODEGEN_SRC = REPO_ROOT / "tests" / "codegen"
CACHE_DIR = REPO_ROOT / ".cache" / "codegen"
SCHEMA_ENV_VAR = "CHATTERGRAM_SCHEMA_PATH"
DEFAULT_SCHEMA_PATH = REPO_ROOT / "schema.graphql"

# Files copied from tests/codegen/ into the cache working directory.
CODEGEN_FILES = ("package.json", "package-lock.json", "tsconfig.json", "codegen.ts", "operations.ts", "usage.ts")
# Files whose content decides whether `npm ci` must run again.
INSTALL_INPUTS = ("package.json", "package-lock.json")
STAMP_NAME = ".npm-ci.stamp"

NPM_CI_TIMEOUT = 300
CODEGEN_TIMEOUT = 120
TSC_TIMEOUT = 120

BUILTIN_SCALARS = frozenset({"ID", "String", "Int", "Float", "Boolean"})

_TYPE_NODES = (
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    InterfaceTypeDefinitionNode,
    InterfaceTypeExtensionNode,
    InputObjectTypeDefinitionNode,
    InputObjectTypeExtensionNode,
    UnionTypeDefinitionNode,
    UnionTypeExtensionNode,
)
_ENUM_NODES = (EnumTypeDefinitionNode, EnumTypeExtensionNode)
_SCALAR_NODES = (ScalarTypeDefinitionNode, ScalarTypeExtensionNode)


def schema_path() -> Path:
    """The SDL file under test: $CHATTERGRAM_SCHEMA_PATH, else <repo>/schema.graphql."""
    override = os.environ.get(SCHEMA_ENV_VAR)
    return Path(override).expanduser().resolve() if override else DEFAULT_SCHEMA_PATH


def _require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"`{name}` is not on PATH: the schema codegen check needs Node.js and npm "
            "(Node 20+). Install them (e.g. `apt-get install nodejs npm`) and re-run.",
            pytrace=False,
        )
    return path


def _format_output(proc: subprocess.CompletedProcess[str] | subprocess.TimeoutExpired) -> str:
    def text(value: str | bytes | None) -> str:
        if value is None:
            return ""
        return value.decode(errors="replace") if isinstance(value, bytes) else value

    return f"--- stdout ---\n{text(proc.stdout)}\n--- stderr ---\n{text(proc.stderr)}"


def _run(step: str, cmd: list[str], *, timeout: int, env: dict[str, str] | None = None) -> None:
    try:
        proc = subprocess.run(
            cmd,
            cwd=CACHE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"{step} timed out after {timeout}s: {' '.join(cmd)}\n{_format_output(exc)}",
            pytrace=False,
        )
    if proc.returncode != 0:
        pytest.fail(
            f"{step} failed (exit {proc.returncode}): {' '.join(cmd)}\n{_format_output(proc)}",
            pytrace=False,
        )


def _tool_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "CI": "true",  # plain (non-interactive) listr output from graphql-codegen
            "NO_COLOR": "1",
            "FORCE_COLOR": "0",
            "npm_config_update_notifier": "false",
            "npm_config_fund": "false",
            "npm_config_audit": "false",
        }
    )
    env.update(extra)
    return env


def _sync_codegen_files() -> None:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    for name in CODEGEN_FILES:
        src = CODEGEN_SRC / name
        dst = CACHE_DIR / name
        if not dst.exists() or dst.read_bytes() != src.read_bytes():
            shutil.copyfile(src, dst)


def _install_fingerprint(node: str) -> str:
    digest = hashlib.sha256()
    for name in INSTALL_INPUTS:
        digest.update(name.encode() + b"\0" + (CODEGEN_SRC / name).read_bytes() + b"\0")
    node_version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout.strip()
    digest.update(node_version.encode())
    return digest.hexdigest()


def _ensure_node_modules(node: str, npm: str) -> None:
    stamp = CACHE_DIR / STAMP_NAME
    fingerprint = _install_fingerprint(node)
    bins = CACHE_DIR / "node_modules" / ".bin"
    installed = (bins / "graphql-codegen").exists() and (bins / "tsc").exists()
    if installed and stamp.exists() and stamp.read_text().strip() == fingerprint:
        return
    stamp.unlink(missing_ok=True)
    _run("npm ci", [npm, "ci", "--prefer-offline", "--no-audit", "--no-fund"], timeout=NPM_CI_TIMEOUT,
         env=_tool_env())
    stamp.write_text(fingerprint + "\n")


def _declared_names(sdl: str) -> tuple[set[str], set[str], set[str]]:
    """(object/interface/input/union names, enum names, custom scalar names) in the SDL."""
    types: set[str] = set()
    enums: set[str] = set()
    scalars: set[str] = set()
    for definition in parse(sdl, no_location=True).definitions:
        if isinstance(definition, _TYPE_NODES):
            types.add(definition.name.value)
        elif isinstance(definition, _ENUM_NODES):
            enums.add(definition.name.value)
        elif isinstance(definition, _SCALAR_NODES):
            scalars.add(definition.name.value)
    return types, enums, scalars - BUILTIN_SCALARS


def test_schema_codegen_typescript_compiles() -> None:
    node = _require_tool("node")
    npm = _require_tool("npm")

    schema = schema_path()
    if not schema.is_file():
        pytest.fail(
            f"GraphQL schema not found at {schema}. Generate it with `chattergram export-schema` "
            f"(or point {SCHEMA_ENV_VAR} at an SDL file).",
            pytrace=False,
        )

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".lock", "w") as lock:
        # Serialise concurrent runs (e.g. pytest-xdist) sharing the cache directory.
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            _sync_codegen_files()
            _ensure_node_modules(node, npm)

            generated = CACHE_DIR / "types.ts"
            generated.unlink(missing_ok=True)  # never judge a stale file from an earlier run
            shutil.rmtree(CACHE_DIR / "gql", ignore_errors=True)
            bins = CACHE_DIR / "node_modules" / ".bin"
            _run(
                "graphql-codegen",
                [node, str(bins / "graphql-codegen"), "--config", "codegen.ts"],
                timeout=CODEGEN_TIMEOUT,
                env=_tool_env(CODEGEN_SCHEMA=str(schema)),
            )
            assert generated.is_file(), f"graphql-codegen did not write {generated}"
            output = generated.read_text()
            client_types = (CACHE_DIR / "gql" / "graphql.ts").read_text()

            _run(
                "tsc --strict",
                [node, str(bins / "tsc"), "-p", "tsconfig.json"],
                timeout=TSC_TIMEOUT,
                env=_tool_env(),
            )
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

    # The client preset typed each operation (tsc above checked how usage.ts uses them).
    for name, kind in (("MeAndHistory", "Query"), ("SendText", "Mutation"), ("UploadVoice", "Mutation"),
                       ("MessageEvents", "Subscription")):
        assert re.search(rf"^export type {name}{kind}\b", client_types, re.M), f"no {name}{kind} in gql/graphql.ts"
        assert re.search(rf"^export const {name}Document\b", client_types, re.M), f"no {name}Document"

    assert re.search(r"^export type Query\b", output, re.MULTILINE), (
        f"no `export type Query` in {generated}"
    )

    types, enums, scalars = _declared_names(schema.read_text())
    assert "Query" in types, f"{schema} declares no `type Query`"

    missing = sorted(
        [f"type {name}" for name in types if not re.search(rf"^export type {name}\b", output, re.M)]
        + [f"enum {name}" for name in enums if not re.search(rf"^export enum {name}\b", output, re.M)]
        + [
            f"scalar {name}"
            for name in scalars
            if not re.search(rf"^\s+{name}: \{{ input: .+; output: .+; \}}", output, re.M)
        ]
    )
    assert not missing, (
        f"declared in {schema} but not emitted by graphql-codegen into {generated}: "
        + ", ".join(missing)
    )
