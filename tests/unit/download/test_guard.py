"""The address guard against real loopback servers: refused by default, opened only as allowed,
checked again on every redirect hop."""

from __future__ import annotations

import threading
import urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from curate.download.guard import BLOCKED_PREFIX, AddressPolicy, build_opener
from curate.errors import CurateError


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", self.path.split("to=", 1)[1])
            self.end_headers()
            return
        body = b"hello"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()
    thread.join()


def _fetch(policy: AddressPolicy, url: str) -> bytes:
    with build_opener(policy).open(url, timeout=5) as r:
        return r.read()


def test_loopback_refused_by_default(server):
    with pytest.raises(urllib.error.URLError, match=BLOCKED_PREFIX):
        _fetch(AddressPolicy(), f"http://{server}/x")


@pytest.mark.parametrize("allow", ["127.0.0.1", "127.0.0.0/8", "localhost"])
def test_allow_list_opens_loopback(server, allow):
    port = server.split(":")[1]
    host = "localhost" if allow == "localhost" else "127.0.0.1"
    assert _fetch(AddressPolicy((allow,)), f"http://{host}:{port}/x") == b"hello"


def test_host_port_entry_opens_only_that_port(server):
    policy = AddressPolicy((server,))
    assert _fetch(policy, f"http://{server}/x") == b"hello"
    with pytest.raises(urllib.error.URLError, match=BLOCKED_PREFIX):
        _fetch(policy, "http://127.0.0.1:1/x")


def test_redirect_to_blocked_address_is_refused(server):
    policy = AddressPolicy((server,))
    with pytest.raises(urllib.error.URLError, match="169.254.169.254"):
        _fetch(policy, f"http://{server}/redirect?to=http://169.254.169.254/latest/meta-data")
    assert _fetch(policy, f"http://{server}/redirect?to=http://{server}/y") == b"hello"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "data:,hello"])
def test_other_schemes_refused(url):
    with pytest.raises(urllib.error.URLError, match="is not http or https"):
        _fetch(AddressPolicy(("127.0.0.0/8",)), url)


@pytest.mark.parametrize("ip,blocked", [("10.1.2.3", True), ("192.168.0.1", True), ("169.254.169.254", True),
                                        ("224.0.0.1", True), ("0.0.0.0", True), ("::1", True),
                                        ("::ffff:127.0.0.1", True), ("fe80::1", True), ("8.8.8.8", False),
                                        ("2606:4700::1111", False)])
def test_address_classes(ip, blocked):
    policy = AddressPolicy()
    if blocked:
        with pytest.raises(OSError, match=BLOCKED_PREFIX):
            policy.check("example.org", 80, ip)
    else:
        policy.check("example.org", 80, ip)


def test_bad_allow_entry_is_a_clear_error():
    with pytest.raises(CurateError, match="not a host, host:port or CIDR"):
        AddressPolicy(("10.0.0.0/99",))
