"""The playground (``GET /`` and ``/playground``) and the console (``/console``).

They are static files shipped in the package (``gateway/api/static``), read
once when the routes are added and served from memory with an ``ETag``,
``Last-Modified`` and ``Cache-Control: no-cache``: a browser revalidates each
file and gets ``304 Not Modified`` while it is unchanged, so an upgraded
gateway is never shown with stale scripts. Nothing is rendered by the server,
so no key or other secret can reach a page: the pages call the API from the
browser, with the key the user typed (kept in that tab's session storage).
Only files under ``static/`` can be served; nothing is fetched from elsewhere.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

from aiohttp import web

from adapters.errors import NotFoundError

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
PAGES = {"/": "playground.html", "/playground": "playground.html", "/console": "console.html"}
# The pages load their own files only and talk to this gateway only.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str
    modified: int  # whole seconds, as Last-Modified carries it
    headers: dict[str, str]  # what every answer about it carries, 304s included


def _asset(body: bytes, content_type: str, modified: int) -> Asset:
    etag = '"' + hashlib.sha256(body).hexdigest()[:24] + '"'
    headers = {
        "ETag": etag,
        "Last-Modified": formatdate(modified, usegmt=True),
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    return Asset(body, content_type, etag, modified, headers)


def load_assets(directory: Path) -> dict[str, Asset]:
    """Every servable file under ``directory`` by its relative path."""
    assets = {}
    for path in sorted(directory.rglob("*")):
        content_type = CONTENT_TYPES.get(path.suffix)
        if content_type is None or not path.is_file():
            continue
        name = path.relative_to(directory).as_posix()
        assets[name] = _asset(path.read_bytes(), content_type, int(path.stat().st_mtime))
    return assets


def not_modified(request: web.Request, asset: Asset) -> bool:
    """RFC 9110's conditional GET: If-None-Match wins over If-Modified-Since."""
    tags = request.headers.get("If-None-Match")
    if tags is not None:
        given = {tag.strip().removeprefix("W/") for tag in tags.split(",")}
        return "*" in given or asset.etag in given
    since = request.headers.get("If-Modified-Since")
    if since is None:
        return False
    try:
        return asset.modified <= parsedate_to_datetime(since).timestamp()
    except (TypeError, ValueError):  # an unparsable date is ignored, as RFC 9110 says
        return False


class StaticPages:
    """The handlers of the pages and their files, over assets loaded once."""

    def __init__(self, assets: dict[str, Asset]) -> None:
        self.assets = assets

    def _serve(self, request: web.Request, name: str, extra: dict[str, str]) -> web.Response:
        asset = self.assets.get(name)
        if asset is None:
            raise NotFoundError(f"Unknown request URL: GET {request.path}.", code="unknown_url")
        headers = {**asset.headers, **extra}
        if not_modified(request, asset):
            return web.Response(status=304, headers=headers)
        return web.Response(
            body=asset.body, headers={**headers, "Content-Type": asset.content_type}
        )

    async def page(self, request: web.Request) -> web.Response:
        return self._serve(request, PAGES[request.path], PAGE_HEADERS)

    async def file(self, request: web.Request) -> web.Response:
        return self._serve(request, request.match_info["path"], {})


def add_page_routes(app: web.Application, directory: Path = STATIC_DIR) -> None:
    pages = StaticPages(load_assets(directory))
    for path in PAGES:
        app.router.add_get(path, pages.page)
    app.router.add_get("/static/{path:.+}", pages.file)
