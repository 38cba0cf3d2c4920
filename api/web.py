"""The web client: `GET /` serves web/index.html, `GET /static/<file>` the page's scripts,
styles and images from the same folder. Plain files, no build step. GraphiQL's page (answered
by the GraphQL view to browsers on `GET /graphql`) and its assets under `/graphiql/<file>`
come from api/graphiql/, vendored from the npm registry: no CDN, so it works offline.

The HTML page carries its own strict Content-Security-Policy (the security middleware adds
the API's `default-src 'none'` policy to every non-HTML response, which is harmless for
scripts and styles). Files are small: they are read on request (so edits show on reload)
and answered with a content hash ETag; `If-None-Match` gives 304. `index.html` is
`no-cache`, assets revalidate after a short max-age.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

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


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    suffix = Path(name).suffix.lower()
    if not _STATIC_NAME.match(name) or suffix not in CONTENT_TYPES:
        return Response("not found", status_code=404, media_type="text/plain")
    web_dir: Path = request.app.state.web_dir
    return _file_response(request, web_dir / name, CONTENT_TYPES[suffix], {
        "Cache-Control": "public, max-age=60, must-revalidate",
    })


def graphiql_page(request: Request) -> Response:
    return _file_response(request, GRAPHIQL_DIR / "index.html", "text/html; charset=utf-8", {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": graphiql_csp(request),
    })


async def graphiql_asset(request: Request) -> Response:
    name = request.path_params["name"]
    suffix = Path(name).suffix.lower()
    if not _STATIC_NAME.match(name) or suffix not in (".js", ".css"):
        return Response("not found", status_code=404, media_type="text/plain")
    return _file_response(request, GRAPHIQL_DIR / name, CONTENT_TYPES[suffix], {
        "Cache-Control": "public, max-age=3600, must-revalidate",
    })


web_routes = [
    Route("/", index, methods=["GET", "HEAD"]),
    Route("/static/{name}", static, methods=["GET", "HEAD"]),
    Route("/graphiql/{name}", graphiql_asset, methods=["GET", "HEAD"]),
]
