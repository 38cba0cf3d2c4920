"""The web client: `GET /` serves web/index.html, `GET /static/<file>` the page's scripts,
styles and images from the same folder. Plain files, no build step. GraphiQL's page (answered
by the GraphQL view to browsers on `GET /graphql`) and its assets under `/graphiql/<file>`
come from api/graphiql/, vendored from the npm registry: no CDN, so it works offline.

The HTML pages carry their own strict Content-Security-Policy naming the request's host (the
security middleware adds the API's `default-src 'none'` policy to every non-HTML response,
which is harmless for scripts and styles); they are read on request, `no-cache`, with a
content-hash ETag (`If-None-Match` gives 304). The assets go through Starlette's `StaticFiles`
(ETag and Last-Modified from the file's size and time, 304 on `If-None-Match` /
`If-Modified-Since`, `Range` requests answered 206), restricted to plain names with known
suffixes (no dotfiles, no subfolders) and revalidated after a short max-age.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

# The web/ folder of a source checkout; an installed package is pointed at its copy by WEB_DIR.
DEFAULT_WEB_DIR = Path(__file__).resolve().parents[1] / "web"

CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webmanifest": "application/manifest+json",
}
GRAPHIQL_DIR = Path(__file__).resolve().parent / "graphiql"
"""GraphiQL 3.8.3 and React 18.2.0 as published on npm (see its VENDORED.md), and our page."""

# Only these names are ever served from web/: no dotfiles, no README, no directories.
_STATIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9]+)+$")
_HOST = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")

PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self' {ws}; manifest-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


GRAPHIQL_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; font-src 'self' data:; "
    "img-src 'self' data:; connect-src 'self' {ws}; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
"""GraphiQL's page: scripts, styles and connections from this host only (its fonts are data:
URLs inside its stylesheet)."""


def _ws_sources(request: Request) -> str:
    """WebSockets go only to this host: `'self'` covers ws:/wss: in CSP Level 3 browsers, the
    explicit host for the others; an odd Host header falls back to the scheme-wide sources."""
    host = request.headers.get("host", "")
    return f"ws://{host} wss://{host}" if _HOST.match(host) else "ws: wss:"


def page_csp(request: Request) -> str:
    """The web client's policy."""
    return PAGE_POLICY.format(ws=_ws_sources(request))


def graphiql_csp(request: Request) -> str:
    return GRAPHIQL_POLICY.format(ws=_ws_sources(request))


def _etag(content: bytes) -> str:
    return '"' + hashlib.sha256(content).hexdigest()[:32] + '"'


def _file_response(request: Request, path: Path, media_type: str, headers: dict[str, str]) -> Response:
    try:
        content = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return Response("not found", status_code=404, media_type="text/plain")
    etag = _etag(content)
    headers = {**headers, "ETag": etag}
    if etag in {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    if request.method == "HEAD":
        return Response(
            status_code=200, headers={**headers, "Content-Length": str(len(content))}, media_type=media_type
        )
    return Response(content, headers=headers, media_type=media_type)


async def index(request: Request) -> Response:
    web_dir: Path = request.app.state.web_dir
    return _file_response(request, web_dir / "index.html", "text/html; charset=utf-8", {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": page_csp(request),
    })


class Assets(StaticFiles):
    """StaticFiles for one flat folder: only names like `app.js` (no dotfiles, no subfolders)
    with one of `content_types`' suffixes, each answered with that type and `cache_control`."""

    def __init__(self, directory: Path, *, content_types: Mapping[str, str], cache_control: str) -> None:
        super().__init__(directory=directory, check_dir=False)
        self.content_types = content_types
        self.cache_control = cache_control

    async def get_response(self, path: str, scope: Scope) -> Response:
        if not _STATIC_NAME.match(path) or Path(path).suffix.lower() not in self.content_types:
            return PlainTextResponse("not found", status_code=404)
        return await super().get_response(path, scope)

    def file_response(self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope,
                      status_code: int = 200) -> Response:
        media_type = self.content_types[Path(full_path).suffix.lower()]
        response = FileResponse(full_path, status_code=status_code, stat_result=stat_result, media_type=media_type,
                                headers={"Cache-Control": self.cache_control})
        if self.is_not_modified(response.headers, Headers(scope=scope)):
            return NotModifiedResponse(response.headers)
        return response


def graphiql_page(request: Request) -> Response:
    return _file_response(request, GRAPHIQL_DIR / "index.html", "text/html; charset=utf-8", {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": graphiql_csp(request),
    })


def web_routes(web_dir: Path) -> list[BaseRoute]:
    """The page, its assets from `web_dir`, GraphiQL's assets."""
    graphiql_types = {suffix: CONTENT_TYPES[suffix] for suffix in (".js", ".css")}
    return [
        Route("/", index, methods=["GET", "HEAD"]),
        Mount("/static", Assets(web_dir, content_types=CONTENT_TYPES,
                                cache_control="public, max-age=60, must-revalidate")),
        Mount("/graphiql", Assets(GRAPHIQL_DIR, content_types=graphiql_types,
                                  cache_control="public, max-age=3600, must-revalidate")),
    ]
