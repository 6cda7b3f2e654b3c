"""Per-request limits for the download's urllib fetches: a total deadline, a body-size cap, a pixel cap,
a configurable User-Agent, and retries with bounded backoff for transient failures (`RetryingOpener`, for
callers of `guard.build_opener`; the download itself retries per host, curate.download.polite).

A plain urlopen reads each body whole under a per-socket timeout only. The handlers here sit in the opener
that curate's fetch (curate.download.fetch) calls directly: the first request of a fetch starts a monotonic
deadline (kept per thread, since each download thread does one fetch at a time, and carried across
redirect hops); every connect and every read is bounded by what is left of it; the body is read in pieces
and refused once it passes the cap.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from PIL import Image

log = logging.getLogger(__name__)

TOO_LARGE_PREFIX = "curate-too-large:"
DEADLINE_PREFIX = "curate-deadline:"
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class FetchLimits:
    deadline: float = 60.0  # seconds per attempt in all: connect, redirects, headers and body
    max_body_bytes: int = 32 * 1024 * 1024
    user_agent: str | None = None
    retries: int = 0  # extra attempts after a 5xx, 429, timeout or dropped connection
    backoff: float = 0.5  # seconds before the first extra attempt, doubled each time ...
    backoff_max: float = 8.0  # ... up to this


class DeadlineExceeded(TimeoutError):
    pass


class BodyTooLarge(OSError):
    pass


_state = threading.local()


def remaining() -> float | None:
    """Seconds left of this thread's current fetch (None outside a fetch); raises once it is spent."""
    deadline = getattr(_state, "deadline", None)
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded(f"{DEADLINE_PREFIX} the total deadline of {_state.total:g} s passed (timed out)")
    return left


def clamp(timeout: object) -> object:
    """A socket timeout no longer than what is left of the deadline."""
    left = remaining()
    if left is None:
        return timeout
    if isinstance(timeout, (int, float)):
        return min(float(timeout), left)
    return left


class StartFetch(urllib.request.BaseHandler):
    """Start the deadline on a fetch's first request (not on its redirect hops); set the User-Agent."""

    handler_order = 0

    def __init__(self, limits: FetchLimits) -> None:
        self.limits = limits

    def http_request(self, req):
        if not getattr(req, "curate_hop", False):
            _state.deadline = time.monotonic() + self.limits.deadline
            _state.total = self.limits.deadline
        if self.limits.user_agent:
            req.add_header("User-Agent", self.limits.user_agent)
        return req

    https_request = http_request


@contextlib.contextmanager
def own_deadline() -> Iterator[None]:
    """Run a fetch nested in another one (a robots.txt fetched while a redirect is followed) under its own
    deadline, then give the outer fetch its deadline back."""
    saved = getattr(_state, "deadline", None), getattr(_state, "total", None)
    _state.deadline = None
    try:
        yield
    finally:
        _state.deadline, _state.total = saved


class RedirectHandler(urllib.request.HTTPRedirectHandler):
    """urllib's redirects, marking each new request as a hop of the first (same deadline, same origin).
    `on_hop(new_url)` runs before each hop is requested and may raise to refuse it (consent checks)."""

    def __init__(self, on_hop: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self.on_hop = on_hop

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            new.curate_hop = True
            new.curate_origin = origin(req)
            if self.on_hop is not None:
                try:
                    self.on_hop(new.full_url)
                except BaseException:
                    fp.close()
                    raise
        return new


def origin(req) -> str:
    """The URL the fetch started from (what the input row holds), through any redirects."""
    return getattr(req, "curate_origin", req.full_url)


def _socket_of(response):
    raw = getattr(getattr(response, "fp", None), "raw", None)
    return getattr(raw, "_sock", None)


class CapBody(urllib.request.BaseHandler):
    """Refuse a too-large Content-Length at once; read any body in pieces, within the cap and the deadline."""

    handler_order = 50

    def __init__(self, limits: FetchLimits) -> None:
        self.limits = limits

    def http_response(self, req, response):
        cap = self.limits.max_body_bytes
        length = response.headers.get("Content-Length", "")
        if length.strip().isdigit() and int(length) > cap:
            response.close()
            raise BodyTooLarge(f"{TOO_LARGE_PREFIX} Content-Length {int(length)} is over the cap of {cap} bytes")
        plain_read = response.read
        sock = _socket_of(response)

        def read(amt: int | None = None) -> bytes:
            if amt is not None and amt >= 0:
                return plain_read(amt)  # a caller reading in pieces (urllib's redirect discard) is bounded
            buf = io.BytesIO()
            while True:
                left = remaining()
                if sock is not None and left is not None:
                    sock.settimeout(min(left, sock.gettimeout() or left))
                chunk = response.read1(_CHUNK)
                if not chunk:
                    return buf.getvalue()
                buf.write(chunk)
                if buf.tell() > cap:
                    response.close()
                    raise BodyTooLarge(f"{TOO_LARGE_PREFIX} body is over the cap of {cap} bytes")

        response.read = read
        return response

    https_response = http_response


def transient(exc: BaseException) -> bool:
    """Worth another attempt: a 5xx or 429 answer, a timeout, a refused, reset or dropped connection."""
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code >= 500 or exc.code == 429
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    if isinstance(exc, (BodyTooLarge, DeadlineExceeded)) or (isinstance(exc, OSError) and "curate-" in str(exc)):
        return False
    return isinstance(exc, (TimeoutError, ConnectionError, http.client.RemoteDisconnected,
                            http.client.IncompleteRead))


class RetryingOpener(urllib.request.OpenerDirector):
    """An opener whose `open` tries again after transient failures, waiting backoff, 2 x backoff, ..."""

    def __init__(self, limits: FetchLimits) -> None:
        super().__init__()
        self.limits = limits

    def open(self, fullurl, data=None, timeout=socket._GLOBAL_DEFAULT_TIMEOUT):
        attempt = 0
        while True:
            try:
                return super().open(fullurl, data, timeout)
            except Exception as exc:
                if attempt >= self.limits.retries or not transient(exc):
                    raise
                wait = min(self.limits.backoff * 2 ** attempt, self.limits.backoff_max)
                attempt += 1
                log.debug("retrying %s in %.2f s (attempt %d): %s", fullurl, wait, attempt + 1, exc)
                time.sleep(wait)


class PixelCap:
    """Wrap img2dataset's Resizer: refuse an image whose header announces more than `max_pixels`,
    before anything decodes it (a decompression bomb is small on the wire and huge in memory)."""

    def __init__(self, resizer, max_pixels: int) -> None:
        self.resizer = resizer
        self.max_pixels = max_pixels

    def __call__(self, img_stream, blurring_bbox_list=None):
        img_stream.seek(0)
        size = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(img_stream) as im:  # reads the header only
                    size = im.size
        except Image.DecompressionBombError as exc:
            return None, None, None, None, None, f"{TOO_LARGE_PREFIX} {exc}"
        except Exception:  # not something Pillow knows: let the resizer decide (it reports decode errors)
            size = None
        img_stream.seek(0)
        if size is not None and size[0] * size[1] > self.max_pixels:
            return None, None, None, None, None, (f"{TOO_LARGE_PREFIX} image of {size[0]}x{size[1]} pixels is "
                                                  f"over the cap of {self.max_pixels}")
        return self.resizer(img_stream, blurring_bbox_list)
