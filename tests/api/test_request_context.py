"""api.logs.RequestContext: the request id's lifetime and the log records it marks, and a request
its client abandoned."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from starlette.types import Message, Receive, Scope, Send

from api.logs import RequestContext, RequestIdFilter, request_id, sane_request_id
from tests.utils.in_process import InProcessApp


def http_scope(*headers: tuple[bytes, bytes]) -> Scope:
    return {"type": "http", "method": "GET", "path": "/x", "headers": list(headers), "client": ("192.0.2.1", 5)}


async def no_body() -> Message:
    return {"type": "http.request", "body": b""}


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.addFilter(RequestIdFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    handler = Recorder()
    logger = logging.getLogger("test.request_context")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)


async def test_the_id_marks_records_while_serving_and_is_echoed(recorder: Recorder) -> None:
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        logging.getLogger("test.request_context").info("inside")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Message) -> None:
        sent.append(message)

    await RequestContext(app)(http_scope((b"x-request-id", b"abc.DEF-123_4")), no_body, send)
    logging.getLogger("test.request_context").info("after")
    assert [getattr(r, "request_id", None) for r in recorder.records] == ["abc.DEF-123_4", None]
    assert (b"x-request-id", b"abc.DEF-123_4") in sent[0]["headers"]
    assert request_id.get() is None


async def test_an_exception_leaves_the_id_set_for_the_servers_own_log_line() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    async def send(message: Message) -> None:
        pass

    with pytest.raises(RuntimeError):
        await RequestContext(app)(http_scope((b"x-request-id", b"crash-1")), no_body, send)
    # uvicorn logs "Exception in ASGI application" next, in the request's own task.
    assert request_id.get() == "crash-1"
    request_id.set(None)


def test_sane_request_ids() -> None:
    assert sane_request_id("a" * 64) == "a" * 64
    for bad in (None, "", "a" * 65, "a b", "a/b", "a\nb", "ü"):
        generated = sane_request_id(bad)
        assert generated != bad and len(generated) == 32 and int(generated, 16) >= 0
    assert sane_request_id(None) != sane_request_id(None)


async def test_a_request_its_client_abandoned_ends_quietly(
    in_process_app: InProcessApp, caplog: pytest.LogCaptureFixture,
) -> None:
    """A client that gave up (a timeout under load) before its request was read: nobody is left
    to answer, and it is no server error. Before, Starlette's ClientDisconnect escaped to uvicorn,
    which logged "Exception in ASGI application" with a traceback for each (332 in one c1000
    benchmark run), costing CPU exactly when the server was overloaded."""
    sent: list[Message] = []

    async def gone() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {**http_scope((b"content-type", b"application/json"), (b"content-length", b"40")),
             "method": "POST", "path": "/graphql", "query_string": b"", "scheme": "http", "server": ("t", 80),
             "http_version": "1.1", "root_path": ""}
    with caplog.at_level(logging.INFO, logger="chattergram.http"):
        await in_process_app.app(scope, gone, send)
    assert sent == []
    [record] = [r for r in caplog.records if r.name == "chattergram.http"]
    assert record.levelno == logging.INFO and record.getMessage() == "client left before its request was read"
    assert not record.exc_info
