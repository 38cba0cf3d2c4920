"""A local push service: the push-service side of RFC 8030 (a POST per push message to a
subscription's endpoint, answered 201), with scripted answers per subscription, recording
every request. Runs uvicorn in the test's event loop, so a test can stall it on an Event."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.dev_servers import free_port


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class BrowserSubscription:
    """What a browser makes for PushManager.subscribe: a P-256 key pair and an auth secret."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth_secret: bytes = field(default_factory=lambda: os.urandom(16))

    def as_input(self) -> dict[str, str]:
        public = self.private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                            serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "p256dh": b64url(public), "auth": b64url(self.auth_secret)}


@dataclass
class PushRequest:
    name: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakePushService:
    port: int = field(default_factory=free_port)
    requests: list[PushRequest] = field(default_factory=list)
    answers: dict[str, list[int]] = field(default_factory=dict)  # per subscription name, then 201
    stall: dict[str, asyncio.Event] = field(default_factory=dict)  # answer only once set (or after 5 s)
    answered: list[str] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def subscription(self, name: str) -> BrowserSubscription:
        return BrowserSubscription(f"http://127.0.0.1:{self.port}/push/{name}")

    def to(self, name: str) -> list[PushRequest]:
        return [r for r in self.requests if r.name == name]

    async def wait_for(self, name: str, count: int = 1, timeout: float = 20.0) -> list[PushRequest]:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.to(name)) >= count), timeout)
        return self.to(name)

    async def _push(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.requests.append(PushRequest(name, dict(request.headers), await request.body()))
        async with self.arrived:
            self.arrived.notify_all()
        if name in self.stall:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stall[name].wait(), 5)
        script = self.answers.get(name)
        status = script.pop(0) if script else 201
        self.answered.append(name)
        return Response(status_code=status, headers={"Location": f"/message/{len(self.requests)}"})

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FakePushService]:
        app = Starlette(routes=[Route("/push/{name}", self._push, methods=["POST"])])
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None,
                                               timeout_graceful_shutdown=1))
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                serving.result()
            await asyncio.sleep(0.02)
        try:
            yield self
        finally:
            for event in self.stall.values():
                event.set()
            server.should_exit = True
            await serving
