"""Request heads are bounded: more than HTTP_MAX_HEADER_BYTES (16 KiB) of request line and
headers, or more than HTTP_MAX_HEADERS (100) header lines, get 431 and the connection is
closed; a head just inside both bounds is served. Raw sockets against the real server (the
bound lives in the HTTP protocol, below the ASGI app)."""

from __future__ import annotations

import socket

from api.app_server import AppServer

QUERY = b'{"query":"{ __typename }"}'


def _request(extra_headers: list[bytes]) -> bytes:
    head = [b"POST /graphql HTTP/1.1", b"Host: test", b"Content-Type: application/json",
            b"Content-Length: " + str(len(QUERY)).encode(), *extra_headers]
    return b"\r\n".join(head) + b"\r\n\r\n" + QUERY


def _exchange(app: AppServer, data: bytes, *, chunk: int = 4096) -> bytes:
    """Send `data` in chunks (as a slow or large client would), then read until the server closes
    or answers; a reset while sending counts as the server having refused."""
    with socket.create_connection(("127.0.0.1", app.port), timeout=10) as sock:
        sock.settimeout(10)
        try:
            for start in range(0, len(data), chunk):
                sock.sendall(data[start:start + chunk])
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = b""
        try:
            while b"\r\n\r\n" not in response or (b"431" not in response[:12] and b"__typename" not in response):
                part = sock.recv(65536)
                if not part:
                    break
                response += part
        except ConnectionResetError:
            pass
        return response


def test_a_head_inside_the_bounds_is_served(app: AppServer) -> None:
    headers = [b"X-Pad-%d: " % i + b"a" * 100 for i in range(90)]  # 90 headers, ~10 KiB
    response = _exchange(app, _request(headers))
    assert response.startswith(b"HTTP/1.1 200"), response[:200]


def test_headers_larger_than_16_kib_get_431(app: AppServer) -> None:
    headers = [b"X-Big: " + b"a" * 40_000]
    response = _exchange(app, _request(headers))
    assert response.startswith(b"HTTP/1.1 431"), response[:200]
    assert b"connection: close" in response.lower()


def test_many_small_headers_adding_up_past_16_kib_get_431(app: AppServer) -> None:
    headers = [b"X-Pad-%d: " % i + b"a" * 200 for i in range(90)]  # 90 headers, ~19 KiB
    response = _exchange(app, _request(headers))
    assert response.startswith(b"HTTP/1.1 431"), response[:200]


def test_more_than_100_headers_get_431(app: AppServer) -> None:
    headers = [b"X-H%d: 1" % i for i in range(150)]  # tiny, but too many
    response = _exchange(app, _request(headers))
    assert response.startswith(b"HTTP/1.1 431"), response[:200]


def test_a_huge_head_that_never_ends_is_refused_at_once(app: AppServer) -> None:
    # The end of the head never arrives: 431 comes as soon as the bound is passed, well before
    # the head deadline (HTTP_HEADER_TIMEOUT_SECONDS, 10 s), and nothing more is buffered.
    with socket.create_connection(("127.0.0.1", app.port), timeout=10) as sock:
        sock.settimeout(5)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Endless: " + b"a" * 20_000)
        response = sock.recv(65536)
        assert response.startswith(b"HTTP/1.1 431"), response[:200]


def test_the_bound_applies_to_each_request_of_a_keep_alive_connection(app: AppServer) -> None:
    with socket.create_connection(("127.0.0.1", app.port), timeout=10) as sock:
        sock.settimeout(5)
        sock.sendall(_request([]))
        response = b""
        while b"__typename" not in response:
            response += sock.recv(65536)
        assert response.startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Endless: " + b"a" * 20_000)
        assert sock.recv(65536).startswith(b"HTTP/1.1 431")


def test_a_large_body_arriving_with_its_head_in_one_read_is_not_counted_as_head(app: AppServer) -> None:
    """A keep-alive connection's second request, head and a 40 KB body in one send: only the
    head counts (an upload whose bytes arrived in one read was refused with 431)."""
    padded = b'{"query":"{ __typename }","variables":{"pad":"' + b"a" * 40_000 + b'"}}'
    head = (b"POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(padded)).encode() + b"\r\n\r\n")
    with socket.create_connection(("127.0.0.1", app.port), timeout=10) as sock:
        sock.settimeout(10)
        for request in (_request([]), head + padded):
            sock.sendall(request)  # one send: one read on the server, on loopback
            response = b""
            while b"__typename" not in response and b"431" not in response[:12]:
                part = sock.recv(65536)
                if not part:
                    break
                response += part
            assert response.startswith(b"HTTP/1.1 200"), response[:200]
