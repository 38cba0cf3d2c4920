"""A local HTTP server that answers like Deepgram's pre-recorded API (POST /v1/listen),
with scripted outcomes, recording every request it receives. Runs uvicorn in a thread."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.dev_servers import free_port


def listen_response(alternatives: list[tuple[str, float]], duration: float = 3.7) -> dict[str, Any]:
    """A Deepgram-shaped body: metadata plus one channel with these (transcript, confidence)."""
    def words(text: str, confidence: float) -> list[dict[str, Any]]:
        tokens = text.split()
        return [
            {"word": t.strip(".,!?").lower(), "start": round(i * 0.4, 2), "end": round(i * 0.4 + 0.35, 2),
             "confidence": confidence, "punctuated_word": t}
            for i, t in enumerate(tokens)
        ]
    return {
        "metadata": {
            "transaction_key": "deprecated", "request_id": "5d4e9e4c-0000-4000-8000-000000000000",
            "sha256": "0" * 64, "created": "2026-11-26T10:00:00.000Z", "duration": duration, "channels": 1,
            "models": ["30089e05-99d1-4376-b32e-c263170674af"],
            "model_info": {"30089e05-99d1-4376-b32e-c263170674af": {
                "name": "2-general-nova", "version": "2024-01-09.29447", "arch": "nova-2",
            }},
        },
        "results": {"channels": [{
            "alternatives": [
                {"transcript": text, "confidence": confidence, "words": words(text, confidence)}
                for text, confidence in alternatives
            ],
        }]},
    }


@dataclass
class Outcome:
    status: int = 200
    body: dict[str, Any] | None = None
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeDeepgram:
    port: int = field(default_factory=free_port)
    requests: list[dict[str, Any]] = field(default_factory=list)
    script: list[Outcome] = field(default_factory=list)
    default: Outcome = field(default_factory=lambda: Outcome(500, {"err_code": "INTERNAL", "err_msg": "boom"}))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, *outcomes: Outcome, then: Outcome | None = None) -> None:
        self.script = list(outcomes)
        if then is not None:
            self.default = then

    async def _listen(self, request: Request) -> JSONResponse:
        body = await request.body()
        self.requests.append({
            "path": request.url.path, "query": dict(request.query_params), "headers": dict(request.headers),
            "size": len(body), "at": time.monotonic(),
        })
        outcome = self.script.pop(0) if self.script else self.default
        if outcome.delay:
            await asyncio.sleep(outcome.delay)
        return JSONResponse(outcome.body or {}, status_code=outcome.status, headers=outcome.headers)

    def __enter__(self) -> FakeDeepgram:
        app = Starlette(routes=[Route("/v1/listen", self._listen, methods=["POST"])])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                     lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake Deepgram did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
