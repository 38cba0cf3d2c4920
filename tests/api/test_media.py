"""GET /media/{id} with malformed query parameters and headers: always a 4xx (or 200 for a
Range it may ignore), never a server error — on the shared running app."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from api.app_server import AppServer
from tests.utils.audio import speak, upload
from tests.utils.graphql import GraphQLClient, register

REPO = Path(__file__).resolve().parents[2]
set_hypothesis_home_dir(REPO / ".cache" / "hypothesis")  # caches under the ignored .cache/

HUGE = "9" * 5000  # more digits than int() parses (Python's 4,300-digit limit)


@dataclass(frozen=True)
class Media:
    url: str  # without query
    scope: dict[str, str]  # the conversation and viewer the URL was signed for
    exp: str
    sig: str
    size: int


@pytest.fixture(scope="module")
async def media(app: AppServer, tmp_path_factory: pytest.TempPathFactory) -> Media:
    """A signed URL for an upload (the uploader receives one before sending it)."""
    clip = speak("Seek anywhere you like.", tmp_path_factory.mktemp("media"), "ogg").read_bytes()
    async with httpx.AsyncClient(timeout=30) as http:
        gql = GraphQLClient(http, app.graphql_url)
        alice = await register(gql)
        audio = (await upload(http, gql.url, alice.token, clip, "v.ogg", "audio/ogg"))["data"]["uploadAudio"]
    parts = urlsplit(audio["url"])
    query = parse_qs(parts.query)
    scope = {"c": query.get("c", [""])[0], "u": query["u"][0]}
    return Media(f"{parts.scheme}://{parts.netloc}{parts.path}", scope, query["exp"][0], query["sig"][0], len(clip))


@pytest.mark.parametrize("exp", ["²", "٣", HUGE, "0" * 5000 + "1", "-1", "1e12", " 1", ""],
                         ids=["superscript", "arabic-digit", "5000-digits", "5000-zeros", "negative", "float",
                              "space", "empty"])
async def test_malformed_expiry_is_forbidden(media: Media, http: httpx.AsyncClient, exp: str) -> None:
    response = await http.get(media.url, params={**media.scope, "exp": exp, "sig": media.sig})
    assert response.status_code == 403


@pytest.mark.parametrize("sig", ["é" * 43, "💥", "\x00", "A" * 5000],
                         ids=["latin", "emoji", "nul", "5000-chars"])
async def test_malformed_signature_is_forbidden(media: Media, http: httpx.AsyncClient, sig: str) -> None:
    response = await http.get(media.url, params={**media.scope, "exp": media.exp, "sig": sig})
    assert response.status_code == 403


async def test_range_numbers_of_any_length(media: Media, http: httpx.AsyncClient) -> None:
    async def get(value: str) -> httpx.Response:
        params = {**media.scope, "exp": media.exp, "sig": media.sig}
        return await http.get(media.url, params=params, headers={"Range": value})

    whole = await get(f"bytes=0-{HUGE}")  # a last position past the end means "to the end"
    assert whole.status_code == 206 and whole.headers["content-range"] == f"bytes 0-{media.size - 1}/{media.size}"
    suffix = await get(f"bytes=-{HUGE}")  # a suffix longer than the file is the whole file
    assert suffix.status_code == 206 and len(suffix.content) == media.size
    assert (await get(f"bytes={HUGE}-")).status_code == 416  # starts past the end
    padded = await get(f"bytes={'0' * 5000}10-19")
    assert padded.status_code == 206 and padded.headers["content-range"] == f"bytes 10-19/{media.size}"
    assert (await get("bytes=0-1,5-6")).status_code == 200  # several ranges: ignored, the whole file


# Header values h11 lets a client send: visible ASCII and Latin-1, inner spaces.
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                    exclude_characters="\x7f", exclude_categories=("Cc",)), max_size=60)
DIGITS = st.text("0123456789", max_size=5000)
QUERY_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)  # no lone surrogates


def exps(real: str) -> st.SearchStrategy[str]:
    return st.one_of(st.just(real), QUERY_TEXT, DIGITS, st.integers().map(str), st.just(real + "²"))


def sigs(real: str) -> st.SearchStrategy[str]:
    return st.one_of(st.just(real), QUERY_TEXT, st.builds(lambda head, tail: real[:head] + tail,
                                                          st.integers(0, len(real)), QUERY_TEXT))


RANGES = st.one_of(
    HEADER_TEXT,
    st.builds(lambda a, b: f"bytes={a}-{b}", DIGITS, DIGITS),
    st.builds(lambda a, b, c: f"{a}bytes={b}-{c}", HEADER_TEXT, HEADER_TEXT, HEADER_TEXT),
)


def test_any_exp_sig_and_range_is_answered_without_a_server_error(media: Media) -> None:
    with httpx.Client(timeout=30) as client:

        @seed(20261127)
        @settings(max_examples=150, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                         HealthCheck.large_base_example])
        @given(exp=exps(media.exp), sig=sigs(media.sig), byte_range=st.one_of(st.none(), RANGES))
        def probe(exp: str, sig: str, byte_range: str | None) -> None:
            value = byte_range.strip(" ") if byte_range is not None else ""
            headers = {"Range": value.encode("latin-1")} if value else {}
            response = client.get(media.url, params={**media.scope, "exp": exp, "sig": sig}, headers=headers)
            assert response.status_code < 500, (exp, sig, byte_range, response.status_code, response.text[:200])
            assert response.status_code in (200, 206, 403, 416), (exp, sig, byte_range, response.status_code)

        probe()
