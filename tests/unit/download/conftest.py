"""A loopback HTTP server that misbehaves on purpose, for the download tests.

Routes (the query string is ignored unless a route reads it):
  /img/NAME.jpg          a small valid JPEG, its colour from NAME (NAME may carry a delay: /img/slow-...)
  /slow-body             headers at once, then one byte every 50 ms for a long time
  /endless               an image/jpeg body with no length that never ends
  /huge-declared         Content-Length of 1 GB, then nothing
  /chain/N               N redirects, then an image
  /loop                  redirects to itself
  /to?url=U              redirects to U (a blocked address, another scheme, ...)
  /html, /to-html        an HTML page; a redirect to it
  /jpeg-as-html          a valid JPEG labelled text/html
  /truncated.jpg         the first half of a JPEG; /corrupt.jpg random bytes labelled image/jpeg
  /bomb.png              a PNG header announcing 100,000 x 100,000 pixels; /big.png 3,000 x 3,000
  /flaky/K/N             503 on the first N requests for key K, then an image
  /gate/K                503 while the server's gate is closed, an image once it is open
  /optout, /optout-other X-Robots-Tag: noai; X-Robots-Tag: otherbot: noai (not for us)
  /reset                 closes the connection without an answer
  /missing               404
  /robots.txt            the server's `robots` text for the request's Host (`robots_by_host`), else 404
                         ("HTTP 503" as the text: that status)
  /.well-known/tdmrep.json  the server's `tdmrep` JSON, else 404
  /storm/N/S             429 with Retry-After: S on the first N requests, then an image
  /always/CODE/S         always CODE (429, 503, ...) with Retry-After: S (no header when S is "none")
  /optout-slow           X-Robots-Tag: noai and a Content-Length, then no body until the client hangs up
                         (`closed_before_body` records that it did, without a byte of body sent)
  /tdm-header            an image with the header tdm-reservation: 1
  /png/NAME.png          a 160 x 120 PNG of seeded noise (`noise_png(NAME)`)
The server counts requests per path (`hits`), every request (`requests`) and the most requests it
ever served at once (`max_in_flight`).
"""

from __future__ import annotations

import io
import socket
import struct
import threading
import time
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image


def jpeg(name: str, size: int = 48) -> bytes:
    seed = sum(name.encode())
    buf = io.BytesIO()
    Image.new("RGB", (size, size), (seed * 7 % 256, seed * 13 % 256, seed * 29 % 256)).save(buf, "JPEG")
    return buf.getvalue()


def noise_png(name: str, size: tuple[int, int] = (160, 120)) -> bytes:
    """A PNG of seeded noise: every pixel differs from its neighbours, so a blur shows everywhere it acts."""
    import numpy as np

    rng = np.random.default_rng(sum(name.encode()))
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header announces width x height; its data is one compressed empty row (enough to identify)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * (width + 1)))
            + chunk(b"IEND", b""))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hits: Counter = Counter()
        self.agents: dict[str, str] = {}
        self.gate_open = False
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.robots: str | None = None  # /robots.txt for any host not in robots_by_host
        self.robots_by_host: dict[str, str] = {}  # Host header without port -> robots.txt
        self.tdmrep: str | None = None
        self.closed_before_body: dict[str, bool] = {}
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def handle_error(self, request, client_address) -> None:
        pass  # clients that give up mid-body are the point here


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, *args) -> None:
        pass

    def _send(self, code: int, body: bytes = b"", ctype: str = "image/jpeg", headers: dict | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _drip(self, body_iter) -> None:
        try:
            for piece in body_iter:
                if self.server.stopping.is_set():
                    return
                self.wfile.write(piece)
                self.wfile.flush()
        except OSError:  # the client gave up: what these routes are for
            pass

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.requests += 1
            self.server.in_flight += 1
            self.server.max_in_flight = max(self.server.max_in_flight, self.server.in_flight)
        try:
            self._route()
        finally:
            with self.server.lock:
                self.server.in_flight -= 1

    def _route(self) -> None:  # noqa: C901 - one branch per misbehaviour reads best here
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        with self.server.lock:
            self.server.hits[path] += 1
            hits = self.server.hits[path]
            self.server.agents[path] = self.headers.get("User-Agent", "")
        if self._consent_files(path) or self._polite_routes(path, hits):
            return
        if path.startswith("/img/"):
            if "/slow-" in path:
                self.server.stopping.wait(0.05)
            self._send(200, jpeg(path))
        elif path == "/slow-body":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self._drip(self._slow(b"x", 0.05, 2000))
        elif path == "/endless":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.end_headers()
            self._drip(b"\xff" * 65536 for _ in range(100000))
        elif path == "/huge-declared":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(10 ** 9))
            self.end_headers()
        elif path.startswith("/chain/"):
            n = int(path.rsplit("/", 1)[1])
            self._redirect(f"/chain/{n - 1}" if n > 0 else "/img/chain-end.jpg")
        elif path == "/loop":
            self._redirect("/loop")
        elif path == "/to":
            self._redirect(query["url"][0])
        elif path == "/html":
            self._send(200, b"<html><body>not an image</body></html>", "text/html; charset=utf-8")
        elif path == "/to-html":
            self._redirect("/html")
        elif path == "/jpeg-as-html":
            self._send(200, jpeg(path), "text/html")
        elif path == "/truncated.jpg":
            body = jpeg(path)
            self._send(200, body[: len(body) // 2])
        elif path == "/corrupt.jpg":
            self._send(200, bytes(range(256)) * 8)
        elif path == "/bomb.png":
            self._send(200, png_header(100_000, 100_000), "image/png")
        elif path == "/big.png":
            self._send(200, png_header(3000, 3000), "image/png")
        elif path.startswith("/flaky/"):
            n = int(path.rsplit("/", 1)[1])
            if hits <= n:
                self._send(503, b"busy", "text/plain")
            else:
                self._send(200, jpeg(path))
        elif path.startswith("/gate/"):
            if self.server.gate_open:
                self._send(200, jpeg(path))
            else:
                self._send(503, b"closed", "text/plain")
        elif path == "/optout":
            self._send(200, jpeg(path), headers={"X-Robots-Tag": "noai"})
        elif path == "/optout-other":
            self._send(200, jpeg(path), headers={"X-Robots-Tag": "otherbot: noai"})
        elif path == "/reset":
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self._send(404, b"missing", "text/plain")

    def _consent_files(self, path: str) -> bool:
        if path == "/robots.txt":
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
            text = self.server.robots_by_host.get(host, self.server.robots)
            if text is None:
                self._send(404, b"missing", "text/plain")
            elif text.startswith("HTTP "):  # "HTTP 503": that status
                self._send(int(text.split()[1]), b"unavailable", "text/plain")
            else:
                self._send(200, text.encode(), "text/plain")
        elif path == "/.well-known/tdmrep.json":
            if self.server.tdmrep is None:
                self._send(404, b"missing", "text/plain")
            else:
                self._send(200, self.server.tdmrep.encode(), "application/json")
        elif path == "/optout-slow":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", "100000")
            self.send_header("X-Robots-Tag", "noai")
            self.end_headers()
            self.wfile.flush()
            self.connection.settimeout(30)
            try:
                closed = self.connection.recv(1) == b""  # the client hung up without waiting for the body
            except OSError:
                closed = True
            self.server.closed_before_body[path] = closed
        elif path == "/tdm-header":
            self._send(200, jpeg(path), headers={"tdm-reservation": "1"})
        elif path.startswith("/png/"):
            self._send(200, noise_png(path), "image/png")
        else:
            return False
        return True

    def _polite_routes(self, path: str, hits: int) -> bool:
        if path.startswith("/storm/"):
            n, wait = path.split("/")[2:4]
            if hits <= int(n):
                self._send(429, b"slow down", "text/plain", headers={"Retry-After": wait})
            else:
                self._send(200, jpeg(path))
        elif path.startswith("/always/"):
            code, wait = path.split("/")[2:4]
            self._send(int(code), b"no", "text/plain", headers={} if wait == "none" else {"Retry-After": wait})
        else:
            return False
        return True

    def _slow(self, byte: bytes, every: float, n: int):
        for _ in range(n):
            if self.server.stopping.wait(every):
                return
            yield byte


class BadServer:
    """The misbehaving server on 127.0.0.1 and a free port, in a background thread."""

    def __init__(self) -> None:
        self._server = _Server()
        self.port = self._server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def hits(self) -> Counter:
        return self._server.hits

    @property
    def agents(self) -> dict[str, str]:
        return self._server.agents

    def __getattr__(self, name: str):  # robots, tdmrep, requests, max_in_flight, closed_before_body, ...
        return getattr(self.__dict__["_server"], name)

    def set(self, **values) -> None:
        """Set the server's robots, robots_by_host or tdmrep."""
        for k, v in values.items():
            setattr(self._server, k, v)

    def open_gate(self) -> None:
        self._server.gate_open = True

    def reset(self) -> None:
        with self._server.lock:
            self._server.hits.clear()
        self._server.gate_open = False

    def __enter__(self) -> BadServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture()
def bad_server():
    with BadServer() as server:
        yield server


@pytest.fixture(scope="module")
def module_bad_server():
    with BadServer() as server:
        yield server


def _wait_for(condition, timeout: float = 60.0, every: float = 0.02) -> bool:
    """Poll `condition` until it holds (True) or `timeout` passes (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(every)
    return condition()


@pytest.fixture()
def wait_for():
    return _wait_for
