"""The web client's and GraphiQL's files through Starlette's StaticFiles (api/web.py): ETag and
Last-Modified with 304, Range with 206, the page's own CSP and today's rules (only plain names
with known suffixes, no dotfiles or subfolders, Cache-Control on every answer, 304s included).

An in-process app whose WEB_DIR is a folder of the test's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.utils.in_process import InProcessApp, InProcessApps

SCRIPT = b"export const answer = 42;\n" * 100  # 2,600 bytes


@pytest.fixture
async def served(in_process_apps: InProcessApps, tmp_path: Path) -> InProcessApp:
    web = tmp_path / "web"
    (web / "sub").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html><title>t</title>")
    (web / "app.js").write_bytes(SCRIPT)
    (web / "styles.css").write_text("body { margin: 0 }\n")
    (web / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (web / ".env").write_text("JWT_SECRET=leaked\n")
    (web / "notes.txt").write_text("private\n")
    (web / "sub" / "app.js").write_text("nested\n")
    (web / "link.js").symlink_to(tmp_path / "outside.js")
    (tmp_path / "outside.js").write_text("outside\n")
    return await in_process_apps.start(web_dir=web)


async def test_assets_have_etags_ranges_and_cache_control(served: InProcessApp) -> None:
    async with served.client() as gql:
        http = gql.client
        full = await http.get("/static/app.js")
        assert full.status_code == 200 and full.content == SCRIPT
        assert full.headers["content-type"] == "text/javascript; charset=utf-8"
        assert full.headers["cache-control"] == "public, max-age=60, must-revalidate"
        assert full.headers["accept-ranges"] == "bytes" and full.headers["last-modified"]
        etag = full.headers["etag"]

        for conditional in ({"If-None-Match": etag}, {"If-None-Match": f'"other", W/{etag}'},
                            {"If-Modified-Since": full.headers["last-modified"]}):
            again = await http.get("/static/app.js", headers=conditional)
            assert again.status_code == 304 and again.content == b"", conditional
            assert again.headers["etag"] == etag
            assert again.headers["cache-control"] == "public, max-age=60, must-revalidate"
        assert (await http.get("/static/app.js", headers={"If-None-Match": '"stale"'})).status_code == 200

        part = await http.get("/static/app.js", headers={"Range": "bytes=26-51"})
        assert part.status_code == 206 and part.content == SCRIPT[26:52]
        assert part.headers["content-range"] == f"bytes 26-51/{len(SCRIPT)}"
        assert (await http.get("/static/app.js", headers={"Range": "bytes=99999-"})).status_code == 416

        head = await http.head("/static/app.js")
        assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == str(len(SCRIPT))
        assert (await http.get("/static/styles.css")).headers["content-type"] == "text/css; charset=utf-8"
        assert (await http.get("/static/logo.svg")).headers["content-type"] == "image/svg+xml"
        assert (await http.post("/static/app.js")).status_code == 405


async def test_only_plain_names_with_known_suffixes_are_served(served: InProcessApp) -> None:
    async with served.client() as gql:
        http = gql.client
        for path in ("/static/.env", "/static/notes.txt", "/static/index.html", "/static/sub/app.js",
                     "/static/..%2Fweb%2Fapp.js", "/static/%2e%2e/outside.js", "/static/link.js", "/static/nope.js",
                     "/static/", "/graphiql/index.html", "/graphiql/VENDORED.md", "/graphiql/nope.js"):
            response = await http.get(path)
            assert response.status_code == 404, path
            assert "leaked" not in response.text and "outside" not in response.text


async def test_graphiql_assets_and_the_pages_keep_their_headers(served: InProcessApp) -> None:
    async with served.client() as gql:
        http = gql.client
        page = await http.get("/")
        assert page.headers["cache-control"] == "no-cache"
        assert "connect-src 'self' ws://testserver wss://testserver;" in page.headers["content-security-policy"]
        assert (await http.get("/", headers={"If-None-Match": page.headers["etag"]})).status_code == 304
        asset = next(name.name for name in sorted(Path("api/graphiql").glob("*.js")))
        script = await http.get(f"/graphiql/{asset}")
        assert script.status_code == 200 and script.headers["content-type"] == "text/javascript; charset=utf-8"
        assert script.headers["cache-control"] == "public, max-age=3600, must-revalidate"
        assert (await http.get(f"/graphiql/{asset}", headers={"Range": "bytes=0-9"})).status_code == 206
