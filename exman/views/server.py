"""``exman ui``: the page of the views, served live from a root.

A small ASGI app (starlette, run by uvicorn): the page, its static files,
``api/payload`` (the runs, polled by the page, with an ETag so that an
unchanged root costs one small answer), ``api/run/<id>`` (one run's details
and log tail, followed while it runs) and ``files/<path>`` (files of the run
folders, never anything outside the root). Read-only. Bound to loopback by
default; any other address needs a token.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any

from ..index import Index
from ..record.run import Run
from ..record.store import ExmanError, Root, RunNotFound, StrPath
from .data import CurveCache, payload, run_details
from .page import render, static_file

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = ["LOOPBACK", "PathRefused", "app", "check_address", "inside", "ui"]

LOOPBACK = "127.0.0.1"
#: the folders of a root whose files the server hands out
SERVED = ("runs", "fails", "tmp")
#: log lines in a run's details
LOG_LINES = 200
COOKIE = "exman_token"


class PathRefused(ExmanError):
    """A path asked for leads outside the run folders of the root."""


def inside(root: StrPath, relpath: str) -> str:
    """The real path of ``relpath`` below ``root``'s run folders.

    :raises PathRefused: an absolute path, ``..``, a NUL byte, a folder
        other than runs/, fails/ or tmp/, or a link that leads out of them.
    """
    if "\0" in relpath or relpath.startswith("/") or "\\" in relpath:
        raise PathRefused(f"{relpath!r}: not a path inside the root")
    parts = relpath.split("/")
    if any(p in ("..", ".") for p in parts) or parts[0] not in SERVED:
        raise PathRefused(f"{relpath!r}: only files of {', '.join(SERVED)} are served")
    top = os.path.realpath(os.path.join(root, parts[0]))
    full = os.path.realpath(os.path.join(top, *parts[1:]))
    if os.path.commonpath([top, full]) != top or full == top:
        raise PathRefused(f"{relpath!r} leads outside {parts[0]}/")
    return full


def check_address(host: str, token: str | None) -> tuple[str | None, str | None]:
    """The token a server on ``host`` needs and a warning to print, if any.

    On loopback the token is optional; on any other address one is made
    when none is given, and the warning says who can reach the runs.
    """
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback:
        return token, None
    token = token or secrets.token_urlsafe(24)
    return token, (
        f"listening on {host}: anyone who can reach this address and has the "
        "token can read the runs of this root"
    )


class _Payload:
    """The payload's JSON and ETag, shared by every page that polls.

    Rebuilt when asked for at least ``fresh`` seconds after the last
    rebuild, and at least four times as long as that rebuild took: a root
    so large that a rebuild takes seconds costs the server at most a fifth
    of a core however often its pages poll (they see new runs later).
    """

    #: the wait after a rebuild, in rebuilds of the same length
    PAUSE = 4

    def __init__(self, root: Root, fresh: float) -> None:
        self.root = root
        self.fresh = fresh
        self.lock = threading.Lock()
        self.at = -1e9
        self.took = 0.0
        self.body = b""
        self.etag = ""
        self.curves = CurveCache()  # a finished sweep's curves: read once

    def get(self) -> tuple[bytes, str]:
        with self.lock:
            start = time.monotonic()
            if start - self.at >= max(self.fresh, self.PAUSE * self.took):
                index = Index(self.root.path)
                data = payload(index, details=False, curve_cache=self.curves)
                data["generated"] = ""  # unchanged runs: the same ETag
                body = json.dumps(data, ensure_ascii=False, allow_nan=False)
                self.body = body.encode("utf-8")
                self.etag = '"' + hashlib.sha1(self.body).hexdigest() + '"'
                self.at = time.monotonic()
                self.took = self.at - start
            return self.body, self.etag


def app(root: StrPath, *, token: str | None = None, poll_ms: int = 2000) -> Starlette:
    """The ASGI app of ``exman ui`` for ``root``.

    :param token: when given, every request must carry it (``?token=``,
        which sets a cookie for the page's own requests, or the header
        ``Authorization: Bearer <token>``).
    :param poll_ms: how often the page asks for new runs.
    :raises ExmanError: ``root`` is not an exman root.
    """
    try:
        from starlette.applications import Starlette
        from starlette.responses import FileResponse, JSONResponse, Response
        from starlette.routing import Route
    except ImportError:
        raise ExmanError("exman ui needs starlette: pip install 'exman[ui]'") from None

    store = Root(root)
    Index(store.path)  # refuses what is no root, now rather than per request
    cache = _Payload(store, poll_ms / 2000)
    page = render(None, live=True, poll_ms=poll_ms)

    def refused(message: str, status: int) -> Response:
        return JSONResponse({"error": message}, status_code=status)

    async def index_page(request: Request) -> Response:
        return Response(page, media_type="text/html; charset=utf-8")

    async def static(request: Request) -> Response:
        try:
            path = static_file(request.path_params["name"])
        except ExmanError as e:
            return refused(str(e), 404)
        return FileResponse(path)

    def api_payload(request: Request) -> Response:
        try:
            body, etag = cache.get()
        except ExmanError as e:
            return refused(str(e), 500)
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    def api_run(request: Request) -> Response:
        num = request.path_params["id"]
        try:
            folder = store.find(num)
        except RunNotFound as e:
            return refused(str(e), 404)
        details = run_details(folder, num, lines=LOG_LINES)
        details["status"] = Run(folder).status
        return JSONResponse(details)

    def files(request: Request) -> Response:
        try:
            path = inside(store.path, request.path_params["path"])
        except PathRefused as e:
            return refused(str(e), 403)
        if not os.path.isfile(path):
            return refused(f"no file {request.path_params['path']!r}", 404)
        return FileResponse(path, media_type=_media_type(path))

    routes = [
        Route("/", index_page),
        Route("/static/{name}", static),
        Route("/api/payload", api_payload),
        Route("/api/run/{id:int}", api_run),
        Route("/files/{path:path}", files),
    ]
    web = Starlette(routes=routes)
    if token is None:
        return web
    return _Guard(web, token)  # type: ignore[return-value]


def _media_type(path: str) -> str:
    """Files of runs are shown, never run: HTML and scripts come as text."""
    import mimetypes

    kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
    if kind.startswith("image/") and kind != "image/svg+xml":
        return kind
    if kind in ("application/json", "application/pdf"):
        return kind
    return "text/plain; charset=utf-8"


class _Guard:
    """ASGI middleware: every request carries the token, or gets 403."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token.encode()

    def _ok(self, given: str | None) -> bool:
        return given is not None and secrets.compare_digest(given.encode(), self.token)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from starlette.requests import Request
        from starlette.responses import PlainTextResponse

        request = Request(scope)
        by_query = self._ok(request.query_params.get("token"))
        auth = request.headers.get("authorization", "")
        bearer = auth[7:] if auth.lower().startswith("bearer ") else None
        if not (by_query or self._ok(request.cookies.get(COOKIE)) or self._ok(bearer)):
            response = PlainTextResponse(
                "exman ui: this server needs its token: open the address it "
                "printed (…/?token=…)",
                status_code=403,
            )
            await response(scope, receive, send)
            return
        if not by_query:
            await self.app(scope, receive, send)
            return
        token = self.token.decode()

        async def with_cookie(message: Any) -> None:
            if message["type"] == "http.response.start":
                cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"set-cookie", cookie.encode()),
                ]
            await send(message)

        await self.app(scope, receive, with_cookie)


def ui(
    root: StrPath,
    *,
    host: str = LOOPBACK,
    port: int = 8765,
    token: str | None = None,
    poll_ms: int = 2000,
) -> None:
    """Serve the views of ``root`` at ``http://host:port/`` until interrupted.

    :param token: required by every request when given (see :func:`app`);
        a non-loopback ``host`` needs one (:func:`check_address` makes it).
    :raises ExmanError: not a root; a non-loopback host without a token;
        starlette or uvicorn missing (``pip install 'exman[ui]'``).
    """
    if check_address(host, token)[1] is not None and not token:
        raise ExmanError(f"listening on {host} needs a token")
    try:
        import uvicorn
    except ImportError:
        raise ExmanError("exman ui needs uvicorn: pip install 'exman[ui]'") from None
    web = app(root, token=token, poll_ms=poll_ms)
    uvicorn.run(web, host=host, port=port, log_level="warning")
