"""The client-address decision (resolvers.context.client_address), as a pure function."""

from __future__ import annotations

import pytest

from resolvers.context import client_address, is_trusted_proxy, parse_trusted_proxies

PROXIES = parse_trusted_proxies("127.0.0.1, 10.0.0.0/8, fd00::/8")


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() -> None:
    assert client_address("127.0.0.1", ["203.0.113.9"], ()) == "127.0.0.1"
    assert client_address("198.51.100.4", ["203.0.113.9"], PROXIES) == "198.51.100.4"  # peer not trusted


def test_behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() -> None:
    assert client_address("127.0.0.1", ["203.0.113.9"], PROXIES) == "203.0.113.9"
    # The client wrote the left-most hop itself; our proxies appended the rest.
    assert client_address("127.0.0.1", ["198.51.100.1, 203.0.113.9, 10.2.3.4"], PROXIES) == "203.0.113.9"
    # Several header lines are one list, in order.
    assert client_address("10.0.0.5", ["198.51.100.1", "203.0.113.9 , 10.2.3.4"], PROXIES) == "203.0.113.9"
    assert client_address("fd00::1", ["2001:db8:0:0::7"], PROXIES) == "2001:db8::7"  # one spelling per address
    assert client_address("::ffff:10.0.0.5", ["::ffff:203.0.113.9"], PROXIES) == "203.0.113.9"  # dual-stack


@pytest.mark.parametrize("header", [[], [""], ["10.1.1.1, 127.0.0.1"], ["unknown"], ["203.0.113.9:443"],
                                   ["203.0.113.9, garbage"]])
def test_no_usable_untrusted_hop_means_the_peer(header: list[str]) -> None:
    assert client_address("127.0.0.1", header, PROXIES) == "127.0.0.1"


def test_a_peer_that_is_no_ip_address_is_never_trusted() -> None:
    assert not is_trusted_proxy("unknown", PROXIES)
    assert client_address("unknown", ["203.0.113.9"], PROXIES) == "unknown"


def test_parsing_trusted_proxies() -> None:
    assert parse_trusted_proxies("") == ()
    assert parse_trusted_proxies(" 10.0.0.1 ,, 192.168.0.0/16,::1 ") == parse_trusted_proxies(
        "10.0.0.1/32,192.168.0.0/16,::1/128")
    assert is_trusted_proxy("192.168.4.5", parse_trusted_proxies("192.168.1.1/16"))  # host bits allowed
    with pytest.raises(ValueError, match=r"proxy\.example\.com"):
        parse_trusted_proxies("10.0.0.1, proxy.example.com")
