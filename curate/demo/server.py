"""A loopback-only, read-only HTTP server for the sample pool (the demo and the tests download from it).

Serves the files under `root` for GET and HEAD, with content types by extension, per-path header
overrides from `root/_headers.json` (X-Robots-Tag for opted-out images, a forced Content-Type for
non-image bodies), 404 for anything missing, no directory listings, no path traversal, and the query
string ignored (URL duplicates carry tracking parameters). Binds 127.0.0.0/8 only.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

logger = logging.getLogger(__name__)

HEADERS_FILE = "_headers.json"
CONTENT_TYPES: dict[str, str] = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
    ".parquet": "application/octet-stream",
}
DEFAULT_CONTENT_TYPE = "application/octet-stream"


class PortInUseError(OSError):
    """The requested port is already bound by another socket."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # img2dataset opens many connections at once

    def __init__(self, address: tuple[str, int], root: Path, headers: dict[str, dict[str, str]]) -> None:
        self.root = root
        self.overrides = headers
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "curate-demo"
    sys_version = ""
    timeout = 30  # seconds a silent client may hold its thread; stop() joins request threads

    def do_GET(self) -> None:
        self._serve(with_body=True)

    def do_HEAD(self) -> None:
        self._serve(with_body=False)

    def _serve(self, with_body: bool) -> None:
        path = _request_path(self.path)
        file = _resolve(self.server.root, path) if path is not None else None
        if file is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        try:
            body = file.read_bytes()
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        extra = self.server.overrides.get(path, {})
        content_type = next((v for k, v in extra.items() if k.lower() == "content-type"), None)
        content_type = content_type or CONTENT_TYPES.get(file.suffix.lower(), DEFAULT_CONTENT_TYPE)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra.items():
            if name.lower() != "content-type":
                self.send_header(name, value)
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)


def _request_path(raw: str) -> str | None:
    """The decoded path of a request target, without query or fragment; None if it tries to escape."""
    path = unquote(urlsplit(raw).path)
    if not path.startswith("/") or "\x00" in path or "\\" in path:
        return None
    parts = path.split("/")
    if any(p in ("..", ".") for p in parts):
        return None
    return path


def _resolve(root: Path, path: str) -> Path | None:
    """The regular file under `root` that `path` names, or None (missing, a folder, hidden, outside)."""
    rel = path.lstrip("/")
    if not rel or rel == HEADERS_FILE:
        return None
    file = (root / rel).resolve()
    if not file.is_relative_to(root) or not file.is_file():
        return None
    return file


def _check_host(host: str) -> None:
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"LoopbackServer binds an IPv4 loopback address only, got host {host!r}") from None
    if addr.version != 4 or not addr.is_loopback:
        raise ValueError(f"LoopbackServer binds an IPv4 loopback address only, got host {host!r}")


class LoopbackServer:
    """Serve `root` over HTTP on a loopback address, in a background thread; a context manager.

    `port=0` lets the OS choose a free port; a specific port raises `PortInUseError` when taken.
    """

    def __init__(self, root: str | Path, host: str = "127.0.0.1", port: int = 0) -> None:
        _check_host(host)
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {port}")
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"nothing to serve: {self.root} is not a folder")
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("LoopbackServer is not running; call start() first")
        return f"http://{self.host}:{self.port}"

    def start(self) -> LoopbackServer:
        if self._server is not None:
            raise RuntimeError("LoopbackServer is already running")
        headers_file = self.root / HEADERS_FILE
        headers = json.loads(headers_file.read_text()) if headers_file.is_file() else {}
        try:
            server = _Server((self.host, self.port), self.root, headers)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    errno.EADDRINUSE, f"port {self.port} on {self.host} is already in use; stop whatever "
                    "holds it or regenerate the pool for another port"
                ) from err
            raise
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"loopback-http-{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.info("serving %s at %s", self.root, self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and join the thread; safe to call twice."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()
        self._server = self._thread = None
        logger.info("stopped serving %s on port %d", self.root, self.port)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
