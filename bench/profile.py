"""py-spy on the API workers during a sendMessage load run: where the CPU goes.

Used by `python -m bench.run --profile` (and `--profile-seed`). Each worker is sampled
(`py-spy record --format raw`, collapsed stacks) while wrk loads the API; the report lists the
functions with the most samples on the stack (inclusive) and on top of it (self), and the share
of each library. `python -m bench.profile --operation seed` profiles the seed scenario alone.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench.stack import Server

PY_SPY = Path(sys.executable).with_name("py-spy")

# Frames are "function (path/to/file.py:line)"; the library is the path's first component
# (site-packages and the standard library both appear relative to their root).
APP_PACKAGES = {"api", "schema", "resolvers", "storage", "media", "transcription"}

# Parts of one sendMessage request, as (label, regex over a stack's frames): the share of the
# samples whose stack contains a matching frame (inclusive, so nested rows overlap); a regex
# with " && " between parts needs a frame matching each part.
COMPONENTS = [
    ("whole HTTP request (uvicorn run_asgi)", r"run_asgi \(uvicorn"),
    ("Strawberry view (GraphQL.__call__)", r"GraphQL.__call__ \(strawberry"),
    ("  request body / content-type parsing", r"parse_http_body|parse_json|parse_content_type|get_request_data"),
    ("  get_context (api.graphql)", r"get_context \(api"),
    ("    JWT verification (PyJWT)", r"TokenService.verify"),
    ("    token revocation check (cached)", r"Context.check_revocation"),
    ("  Schema.execute", r"Schema.execute \(strawberry"),
    ("    schema extensions (hooks, per-request instances)",
     r"SchemaExtensionsRunner|ExtensionContextManagerBase|Schema.get_extensions|create_extensions_runner"),
    ("    parse + validate (cached)", r"_prepare_operation_async|parse_document|validate_document"),
    ("    OperationEdge (limits, log, metrics)", r"on_operation \(api|record_operation"),
    ("    graphql-core execution", r"\(graphql/execution"),
    ("      sendMessage resolver (resolvers.messages)", r"send_message \(resolvers"),
    ("        DIRECT conversation lookup (known_direct, cached)", r"ConversationStore.known_direct"),
    ("        receiver check (UserStore.exists, cached)", r"UserStore.exists"),
    ("        blocks check (not_blocked, cached)", r"not_blocked \(resolvers"),
    ("        DIRECT conversation made (ensure_direct, make_direct)", r"ConversationStore\.(ensure|make)_direct"),
    ("        MessageStore.send (Lua script)", r"MessageStore.send"),
    ("  response (JSON encode + send)", r"encode_json|create_response|RequestResponseCycle.send"),
    ("  MongoDB reads while answering (pymongo)", r"run_asgi \(uvicorn && \(pymongo/"),
    ("redis-py client (everything)", r"\(redis/"),
    ("pymongo client (everything)", r"\(pymongo/"),
    ("outbox persister (MongoDB writes)", r"Persister\.|\(storage/outbox"),
    ("uvicorn supervisor pipe (multiprocessing)", r"multiprocessing/connection"),
]


def record(api: Server, load: Callable[[], dict], workdir: Path, seconds: float) -> dict:
    """Sample every API worker while `load` runs, for at most `seconds`: samplers still running
    when the load ends are stopped then (py-spy writes what it has on SIGINT)."""
    outputs = []
    procs = []
    for pid in api.worker_pids():
        out = workdir / f"py-spy-{pid}.txt"
        outputs.append(out)
        procs.append(subprocess.Popen(
            [str(PY_SPY), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "100",
             "--format", "raw", "--output", str(out), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    errors = []
    try:
        loaded = load()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in procs:
            _, err = proc.communicate(timeout=seconds + 60)
            if proc.returncode != 0:
                errors.append(err.decode(errors="replace")[-500:])
    return {"outputs": outputs, "load": loaded, "errors": errors}


def profiled(api: Server, load: Callable[[], dict], workdir: Path, *, max_seconds: float) -> tuple[dict, dict]:
    """`load()`'s result and the aggregate profile of the API workers while it ran (an error
    entry instead when py-spy cannot sample, e.g. without ptrace permission: the load's
    figures stand)."""
    try:
        recorded = record(api, load, workdir, max_seconds)
    except OSError as exc:
        return load(), {"error": repr(exc), "markdown": f"Profiling failed: `{exc!r}`.\n"}
    return recorded["load"], aggregate(recorded)


def _library(frame: str) -> str:
    path = frame[frame.rfind("(") + 1:].split(":")[0]
    top = path.split("/")[0].removesuffix(".py")
    if top in APP_PACKAGES:
        return f"app: {top}"
    return top or "other"


def aggregate(recorded: dict, top: int = 20) -> dict:
    import re

    component_rx = [(label, [re.compile(part) for part in rx.split(" && ")]) for label, rx in COMPONENTS]
    components: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    libraries: Counter[str] = Counter()
    total = 0
    idle = 0
    for path in recorded["outputs"]:
        if not Path(path).exists():
            continue
        for line in Path(path).read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [f for f in stack.split(";") if f and not f.startswith("process ") and not f.startswith("thread ")]
            total += count
            if not frames:
                continue
            leaf = frames[-1]
            if "select (selectors.py" in leaf or ("_run_once" in leaf and "base_events" in leaf):
                idle += count
            own[leaf] += count
            for frame in set(frames):
                inclusive[frame] += count
            for label, parts in component_rx:
                if all(any(rx.search(f) for f in frames) for rx in parts):
                    components[label] += count
            libraries[_library(leaf)] += count
    load = recorded.get("load") or {}

    def share(n: int) -> float:
        return round(100 * n / total, 1) if total else 0.0

    result = {
        "samples": total,
        "idle_share": share(idle),
        "load": {k: load.get(k) for k in ("connections", "throughput_rps", "requests")} if load else None,
        "by_library_self": [[name, share(n)] for name, n in libraries.most_common()],
        "components": [[label, share(components[label])] for label, _ in COMPONENTS],
        "top_self": [[frame, share(n)] for frame, n in own.most_common(top)],
        "top_inclusive": [[frame, share(n)] for frame, n in inclusive.most_common(top * 2)],
        "errors": recorded.get("errors", []),
    }
    sampled = f" (c{load.get('connections')}, {load.get('throughput_rps')} req/s while sampled)" if load else ""
    md = [f"{total:,} samples over the API workers during a wrk run{sampled}.\n",
          "| part of the request (inclusive) | share of samples |", "|---|---|"]
    md += [f"| {label.replace('  ', '&nbsp;&nbsp;')} | {pct}% |" for label, pct in result["components"]]
    md += ["", "| library (self time) | share |", "|---|---|"]
    md += [f"| {name} | {pct}% |" for name, pct in result["by_library_self"][:15]]
    md += ["", "| hottest frames (self) | share |", "|---|---|"]
    md += [f"| `{frame}` | {pct}% |" for frame, pct in result["top_self"][:15]]
    md += ["", "| frames on the stack (inclusive) | share |", "|---|---|"]
    md += [f"| `{frame}` | {pct}% |" for frame, pct in result["top_inclusive"][10:40]]
    result["markdown"] = "\n".join(md) + "\n"
    return result


async def _main(args: argparse.Namespace) -> dict:
    import secrets
    import tempfile

    from api.dev_servers import embedded_servers
    from bench.seed import DATABASE, create_users, write_tokens
    from bench.stack import api_server, raise_fd_limit

    raise_fd_limit()
    workdir = Path(tempfile.mkdtemp(prefix="chattergram-profile-"))
    secret = secrets.token_urlsafe(48)
    with embedded_servers(workdir / "services") as services:
        mongodb_url = services.mongodb_url.rsplit("/", 1)[0] + f"/{DATABASE}"
        api = api_server(redis_url=services.redis_url, mongodb_url=mongodb_url, jwt_secret=secret,
                         workers=args.workers, log_path=workdir / "api.log", data_dir=workdir / "api-data")
        try:
            api.start()
            users, _ = await create_users(api, redis_url=services.redis_url, mongodb_url=mongodb_url, secret=secret,
                                          count=args.users, via_api=0)
            tokens = workdir / "tokens.txt"
            write_tokens(tokens, users)
            from bench.stack import run_wrk

            if args.operation == "history":  # one client paging 50 conversations of 60+ messages
                from bench.seed import ensure_history_depth

                tokens_all, tokens = tokens, workdir / "history-tokens.txt"
                tokens.write_text("\n".join(tokens_all.read_text().splitlines()[:100]) + "\n")
                ensure_history_depth(api, tokens, services.redis_url)
            mode = "history" if args.operation == "history" else "send"
            if args.operation == "seed":  # every user sends its N, mostly first sends: no warm-up
                recorded = record(api, lambda: run_wrk(api.graphql_url, tokens=tokens, connections=args.users,
                                                       threads=2, duration_s=120, cap=args.per_user, ramp_ms=5000),
                                  workdir, 120)
            else:
                run_wrk(api.graphql_url, tokens=tokens, connections=args.connections, threads=2, duration_s=2,
                        mode=mode)  # warm-up
                recorded = record(api, lambda: run_wrk(api.graphql_url, tokens=tokens, connections=args.connections,
                                                       threads=2, duration_s=args.seconds, mode=mode),
                                  workdir, args.seconds)
            result = aggregate(recorded)
            if args.speedscope:
                for pid in api.worker_pids()[:1]:
                    subprocess.run([str(PY_SPY), "record", "--pid", str(pid), "--duration", "5", "--rate", "100",
                                    "--format", "speedscope", "--output", args.speedscope, "--nonblocking"],
                                   check=False, capture_output=True)
            return result
        finally:
            api.stop()
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    import asyncio
    import json
    import os

    parser = argparse.ArgumentParser(description="py-spy profile of sendMessage (or history, or the seed scenario)")
    parser.add_argument("--operation", choices=["send", "history", "seed"], default="send",
                        help="seed: the seed scenario (--users clients, --per-user sends each, a ramp-up of 5 s)")
    parser.add_argument("--per-user", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--json", help="also write the aggregate as JSON here")
    parser.add_argument("--speedscope", help=argparse.SUPPRESS)
    args = parser.parse_args()
    result = asyncio.run(_main(args))
    print(result["markdown"])
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
