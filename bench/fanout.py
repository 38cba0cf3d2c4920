"""Fan-out: WebSocket subscribers on `messageEvents` while messages are sent at a fixed rate.

The subscribers run in their own process (`python -m bench.fanout receiver ...`, one asyncio
loop, graphql-transport-ws, auth in connection_init) so that their work does not delay the
sender's clock; the sender (`run_fanout`, in the calling process) writes `sendMessage`
requests over keep-alive HTTP connections at a fixed rate, each text carrying its send time
(ns since the epoch). The receiver computes deliver − send for every event it gets.
Subscriber i is user i. In the 1:1 fan-out users 2k and 2k+1 talk to each other
(conversation k), so each message is delivered twice: to its receiver (the figure reported)
and to its sender; in a group (`sendMessage` with `conversationId`) it is delivered to every
member, the sender's own copy included.

Receiver protocol (stdin/stdout lines): it connects the first `warm` subscribers, prints
WARM; on GO it connects the others and prints CONNECTED <seconds> <failures>; on PRIME [s] it
waits until every subscriber has had an event (or s seconds, 30 by default) and prints
PRIMED <n without>;
on RESET it forgets the latencies seen so far; on SETTLE it waits until no event has come
for 1 s (or 30 s) and prints SETTLED; on STOP it writes the results to `--out` and prints
DONE. `Receivers` drives such a process from the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

SUBSCRIPTION = "subscription Events { messageEvents { type message { id text senderId receiverId } } }"
SEND_QUERY = "mutation Send($input: SendMessageInput!) { sendMessage(input: $input) { id } }"


# --------------------------------------------------------------------------- receiver side


class Receiver:
    def __init__(self, url: str, users: list[tuple[str, str]], compression: str | None) -> None:
        self.url = url
        self.users = users  # (token, user id)
        self.compression = compression
        self.latencies_ms: list[float] = []  # at the message's receivers (every member but its sender)
        self.sender_copies_ms: list[float] = []  # the sender's own CREATED event
        self.distinct: set[tuple[int, str]] = set()  # (subscriber, message seq): a duplicate would hide a loss
        self.events = [0] * len(users)
        self.last_event = time.monotonic()
        self.failures = 0
        self.sockets: list[ClientConnection] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def connect_one(self, index: int) -> None:
        from websockets.asyncio.client import connect
        from websockets.typing import Subprotocol

        token, user_id = self.users[index]
        try:
            ws = await connect(self.url, subprotocols=[Subprotocol("graphql-transport-ws")],
                               compression=self.compression, open_timeout=30, max_size=2**20, ping_interval=None)
            await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
            ack = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"no ack: {ack}")
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}))
        except Exception as exc:  # noqa: BLE001 - counted and reported
            self.failures += 1
            print(f"subscriber {index} failed: {exc!r}", file=sys.stderr, flush=True)
            return
        self.sockets.append(ws)
        self.tasks.append(asyncio.create_task(self.listen(index, user_id, ws)))

    async def connect_many(self, indexes: range, concurrency: int = 50) -> None:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with semaphore:
                await self.connect_one(i)

        await asyncio.gather(*(one(i) for i in indexes))

    async def listen(self, index: int, user_id: str, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                now_ns = time.time_ns()
                frame = orjson.loads(raw)
                kind = frame.get("type")
                if kind == "ping":
                    await ws.send('{"type":"pong"}')
                    continue
                if kind != "next":
                    continue
                message = frame["payload"]["data"]["messageEvents"]["message"]
                self.events[index] += 1
                self.last_event = time.monotonic()
                parts = message["text"].split()
                if len(parts) >= 3 and parts[0] == "fanout":
                    latency = (now_ns - int(parts[1])) / 1e6
                    self.distinct.add((index, parts[2]))
                    if message["senderId"] != user_id:
                        self.latencies_ms.append(latency)
                    else:
                        self.sender_copies_ms.append(latency)
        except Exception as exc:  # noqa: BLE001 - a closed subscriber is reported, the others go on
            print(f"subscriber {index} closed: {exc!r}", file=sys.stderr, flush=True)


async def receiver_main(args: argparse.Namespace) -> None:
    lines = Path(args.tokens).read_text().splitlines()[: args.subscribers]
    users = [(ln.split()[0], ln.split()[2]) for ln in lines]
    receiver = Receiver(args.url, users, None if args.compression == "none" else "deflate")
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    warm = min(args.warm, len(users))
    await receiver.connect_many(range(warm))
    print("WARM", flush=True)
    while True:
        command, *arguments = (await stdin.readline()).decode().split() or [""]
        if command == "GO":
            t0 = time.perf_counter()
            await receiver.connect_many(range(warm, len(users)))
            print(f"CONNECTED {time.perf_counter() - t0:.3f} {receiver.failures}", flush=True)
        elif command == "PRIME":
            deadline = time.monotonic() + (float(arguments[0]) if arguments else 30)
            while time.monotonic() < deadline and any(n == 0 for n in receiver.events):
                await asyncio.sleep(0.05)
            print(f"PRIMED {sum(1 for n in receiver.events if n == 0)}", flush=True)
        elif command == "RESET":
            receiver.latencies_ms.clear()
            receiver.sender_copies_ms.clear()
            receiver.distinct.clear()
            print("RESET", flush=True)
        elif command == "SETTLE":
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and time.monotonic() - receiver.last_event < 1.0:
                await asyncio.sleep(0.05)
            print("SETTLED", flush=True)
        elif command in ("STOP", ""):
            Path(args.out).write_bytes(orjson.dumps({
                "receiver_latencies_ms": receiver.latencies_ms,
                "sender_copy_latencies_ms": receiver.sender_copies_ms,
                "distinct_deliveries": len(receiver.distinct),
                "subscribers": len(receiver.sockets),
                "failures": receiver.failures,
            }))
            for ws in receiver.sockets:
                await ws.close()
            print("DONE", flush=True)
            return


class Receivers:
    """A receiver process driven from the benchmark: `async with Receivers(...) as r` starts it
    and waits for its warm subscribers; `connect`, `prime`, `reset`, `settle` and `stop` are the
    protocol's commands. Subscriber i is the user on line i of `tokens`."""

    def __init__(self, url: str, tokens: Path, subscribers: int, out: Path, *, compression: str = "deflate") -> None:
        self.argv = [sys.executable, "-m", "bench.fanout", "receiver", "--url", url, "--tokens", str(tokens),
                     "--subscribers", str(subscribers), "--out", str(out), "--compression", compression]
        self.out = out
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Receivers:
        from bench.stack import REPO

        self.proc = await asyncio.create_subprocess_exec(*self.argv, cwd=REPO, stdin=asyncio.subprocess.PIPE,
                                                         stdout=asyncio.subprocess.PIPE)
        await self._expect("WARM")
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self.proc is not None and self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # an empty line: the receiver writes its results and ends
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()

    async def _expect(self, word: str, timeout: float = 120) -> list[str]:
        assert self.proc is not None and self.proc.stdout is not None
        line = (await asyncio.wait_for(self.proc.stdout.readline(), timeout)).decode().split()
        if not line or line[0] != word:
            raise RuntimeError(f"fan-out receiver said {line!r}, expected {word}")
        return line[1:]

    async def _command(self, word: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(f"{word}\n".encode())
        await self.proc.stdin.drain()

    async def connect(self) -> tuple[float, int]:
        """Connect the other subscribers: (seconds it took, failures)."""
        await self._command("GO")
        seconds, failures = await self._expect("CONNECTED", 300)
        return float(seconds), int(failures)

    async def prime(self, wait_s: float = 30) -> int:
        """Wait until every subscriber has had an event (or `wait_s`): how many have had none."""
        await self._command(f"PRIME {wait_s:g}")
        (without_event,) = await self._expect("PRIMED", wait_s + 30)
        return int(without_event)

    async def reset(self) -> None:
        await self._command("RESET")
        await self._expect("RESET")

    async def settle(self) -> None:
        """Wait until no event has come for 1 s (or 30 s): the deliveries still on their way."""
        await self._command("SETTLE")
        await self._expect("SETTLED", 60)

    async def stop(self) -> dict:
        """Close the subscribers; what they received since the last reset."""
        await self._command("STOP")
        await self._expect("DONE", 60)
        result: dict = orjson.loads(self.out.read_bytes())
        return result


# --------------------------------------------------------------------------- sender side


class HTTPConnection:
    """A minimal keep-alive HTTP/1.1 client connection (much cheaper per request than httpx)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        for attempt in (1, 2):
            if self.reader is None or self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            head = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Content-Type: application/json",
                    f"Content-Length: {len(body)}"] + [f"{k}: {v}" for k, v in headers.items()]
            try:
                self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
                raw = await self.reader.readuntil(b"\r\n\r\n")
                status = int(raw[9:12])
                length = 0
                for line in raw.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                data = await self.reader.readexactly(length)
                return status, data
            except (asyncio.IncompleteReadError, ConnectionError):
                self.close()  # the server closed an idle keep-alive connection: reconnect once
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def send_at_rate(url: str, senders: list[tuple[str, str]], *, rate: float, seconds: float | None = None,
                       count: int | None = None, connections: int = 32, tag: str = "fanout",
                       to: str = "receiverId") -> dict:
    """sendMessage at `rate`/s for `seconds` (or until `count` messages), round-robin over the
    senders (token, target): `to` says what the target is, the partner (`receiverId`) or a
    group (`conversationId`); the text carries the send time and the message's sequence
    number. Returns counts and HTTP latencies."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    pool: asyncio.Queue[HTTPConnection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80))
    http_ms: list[float] = []
    errors = 0
    sent = 0
    tasks: set[asyncio.Task[None]] = set()

    async def send(seq: int) -> None:
        nonlocal errors
        token, target = senders[seq % len(senders)]
        conn = await pool.get()
        try:
            t0 = time.time_ns()
            body = orjson.dumps({"operationName": "Send", "query": SEND_QUERY, "variables": {
                "input": {to: target, "text": f"{tag} {t0} {seq}"}}})
            status, data = await conn.post(parts.path or "/graphql", body, {"Authorization": f"Bearer {token}"})
            http_ms.append((time.time_ns() - t0) / 1e6)
            if status != 200 or b'"errors"' in data:
                errors += 1
        except Exception:  # noqa: BLE001 - counted as a send error; the connection is replaced
            errors += 1
            conn.close()
        finally:
            pool.put_nowait(conn)

    total = count if count is not None else int(rate * (seconds or 0))
    started = time.perf_counter()
    while sent < total:
        elapsed = time.perf_counter() - started
        due = min(int(elapsed * rate) + 1, total) - sent
        for _ in range(due):
            task = asyncio.create_task(send(sent))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        await asyncio.sleep(0.002)
    await asyncio.gather(*tasks)
    took = time.perf_counter() - started
    while not pool.empty():
        pool.get_nowait().close()
    return {"sent": sent, "errors": errors, "seconds": round(took, 3), "achieved_rate": round(sent / took, 1),
            "http_ms": http_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("receiver")
    r.add_argument("--url", required=True)
    r.add_argument("--tokens", required=True)
    r.add_argument("--subscribers", type=int, required=True)
    r.add_argument("--warm", type=int, default=10)
    r.add_argument("--out", required=True)
    r.add_argument("--compression", choices=["deflate", "none"], default="deflate")
    args = parser.parse_args()
    import uvloop

    uvloop.run(receiver_main(args))


if __name__ == "__main__":
    main()
