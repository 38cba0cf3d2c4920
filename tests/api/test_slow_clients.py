"""Slow-client protection: a request head that trickles in is cut off (slowloris), on a new
connection and on a keep-alive one; a body that stalls gets 408; a prompt client is unaffected."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from api.app_server import AppServer

HEAD_TIMEOUT_SECONDS = 1
BODY_TIMEOUT_SECONDS = 1
QUERY = b'{"query":"{ __typename }"}'
REQUEST = (b"POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
           b"Content-Length: " + str(len(QUERY)).encode() + b"\r\n\r\n" + QUERY)


@pytest.fixture(scope="module")
def strict_app(app_factory: Callable[..., AppServer]) -> AppServer:
    return app_factory(HTTP_HEADER_TIMEOUT_SECONDS=str(HEAD_TIMEOUT_SECONDS),
                       HTTP_BODY_TIMEOUT_SECONDS=str(BODY_TIMEOUT_SECONDS)).start()


def _connect(app: AppServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", app.port), timeout=10)
    sock.settimeout(10)  # far beyond the head deadline: a timeout here means "never closed"
    return sock


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b'"__typename"' not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before the response: {data!r}"
        data += chunk
    return data


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def test_a_request_head_that_never_completes_is_cut_off(strict_app: AppServer) -> None:
    with _connect(strict_app) as sock:
        sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: test\r\n")  # ... and the rest never comes
        assert _closed_by_server(sock)


def test_a_keep_alive_connection_gets_the_same_deadline_for_its_next_head(strict_app: AppServer) -> None:
    with _connect(strict_app) as sock:
        sock.sendall(REQUEST)
        assert _read_response(sock).startswith(b"HTTP/1.1 200")
        sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: te")
        assert _closed_by_server(sock)


def test_a_prompt_client_is_served_on_one_connection_many_times(strict_app: AppServer) -> None:
    with _connect(strict_app) as sock:
        for _ in range(3):
            sock.sendall(REQUEST)
            assert _read_response(sock).startswith(b"HTTP/1.1 200")


def test_a_body_that_stalls_gets_408_and_the_connection_closes(strict_app: AppServer) -> None:
    with _connect(strict_app) as sock:
        sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n" + QUERY[:10])  # 90 bytes never follow
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
        assert response.startswith(b"HTTP/1.1 408"), response
        assert b'"code":"BAD_USER_INPUT"' in response
