"""The loopback server: what it serves, what it refuses, and that it leaves no thread or socket behind."""

from __future__ import annotations

import http.client
import io
import json
import socket
import threading
import urllib.error
import urllib.request

import pyarrow.parquet as pq
import pytest
from PIL import Image

from curate.demo.pool import PoolConfig, generate_pool
from curate.demo.server import LoopbackServer, PortInUseError

JPEG = b"\xff\xd8\xff\xe0 not really a jpeg \xff\xd9"


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    (root / "img").mkdir(parents=True)
    (root / "img" / "a.jpg").write_bytes(JPEG)
    (root / "img" / "noai.jpg").write_bytes(JPEG)
    (root / "img" / "page.jpg").write_bytes(b"<html>hello</html>")
    (root / "notes.txt").write_text("plain")
    (root / "blob.bin").write_bytes(b"\x00\x01")
    (root / "_headers.json").write_text(json.dumps({
        "/img/noai.jpg": {"X-Robots-Tag": "noai"},
        "/img/page.jpg": {"Content-Type": "text/html; charset=utf-8"},
    }))
    (tmp_path / "secret.txt").write_text("outside the root")
    return root


@pytest.fixture
def server(site):
    with LoopbackServer(site) as srv:
        yield srv


def raw_get(srv: LoopbackServer, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """Send `path` as-is (no client-side normalisation) and return status, headers, body."""
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_serves_files_with_content_type_by_extension(server):
    assert server.base_url == f"http://127.0.0.1:{server.port}" and server.port > 0
    with urllib.request.urlopen(server.base_url + "/img/a.jpg", timeout=5) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "image/jpeg"
        assert resp.headers["Content-Length"] == str(len(JPEG))
        assert resp.read() == JPEG
    assert raw_get(server, "/notes.txt")[1]["Content-Type"].startswith("text/plain")
    assert raw_get(server, "/blob.bin")[1]["Content-Type"] == "application/octet-stream"


def test_head_sends_headers_only(server):
    status, headers, body = raw_get(server, "/img/a.jpg", method="HEAD")
    assert status == 200 and body == b""
    assert headers["Content-Length"] == str(len(JPEG)) and headers["Content-Type"] == "image/jpeg"


def test_header_overrides(server):
    status, headers, body = raw_get(server, "/img/noai.jpg")
    assert status == 200 and headers["X-Robots-Tag"] == "noai" and body == JPEG
    status, headers, body = raw_get(server, "/img/page.jpg")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert "X-Robots-Tag" not in raw_get(server, "/img/a.jpg")[1]


def test_query_string_and_fragment_are_ignored(server):
    status, headers, body = raw_get(server, "/img/noai.jpg?utm_source=x&utm_medium=y")
    assert status == 200 and body == JPEG and headers["X-Robots-Tag"] == "noai"
    with urllib.request.urlopen(server.base_url.upper() + "/img/a.jpg?x=1#frag", timeout=5) as resp:
        assert resp.read() == JPEG


@pytest.mark.parametrize("path", [
    "/missing.jpg", "/img/", "/img", "/", "/_headers.json", "/../secret.txt", "/img/../../secret.txt",
    "/%2e%2e/secret.txt", "/img/%2E%2E/%2E%2E/secret.txt", "/./img/a.jpg", "/img\\..\\..\\secret.txt",
])
def test_missing_folders_hidden_and_traversal_are_404(server, path):
    status, _, body = raw_get(server, path)
    assert status == 404
    assert b"outside the root" not in body and b"a.jpg" not in body


def test_symlink_out_of_root_is_404(server, site):
    (site / "link.txt").symlink_to(site.parent / "secret.txt")
    assert raw_get(server, "/link.txt")[0] == 404


def test_other_methods_are_refused(server):
    assert raw_get(server, "/img/a.jpg", method="POST")[0] == 501
    assert raw_get(server, "/img/a.jpg", method="PUT")[0] == 501


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "10.0.0.1", "::1", "::", "example.com", ""])
def test_non_loopback_hosts_are_refused(site, host):
    with pytest.raises(ValueError, match="loopback"):
        LoopbackServer(site, host=host)


def test_bad_port_and_missing_root_are_refused(site, tmp_path):
    with pytest.raises(ValueError):
        LoopbackServer(site, port=70000)
    with pytest.raises(FileNotFoundError):
        LoopbackServer(tmp_path / "nope")


def test_base_url_needs_a_running_server(site):
    srv = LoopbackServer(site)
    with pytest.raises(RuntimeError):
        _ = srv.base_url
    with srv:
        with pytest.raises(RuntimeError):
            srv.start()
    srv.stop()  # a second stop is harmless


def test_stop_releases_the_port_and_the_thread(site):
    threads_before = set(threading.enumerate())
    srv = LoopbackServer(site).start()
    port = srv.port
    for _ in range(5):
        assert raw_get(srv, "/img/a.jpg")[0] == 200
    srv.stop()
    assert set(threading.enumerate()) <= threads_before
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    # the demo rebinds the port recorded with the pool: that must work right after stop()
    with LoopbackServer(site, port=port) as again:
        assert again.port == port and raw_get(again, "/img/a.jpg")[2] == JPEG


def test_busy_port_raises_a_clear_error(site):
    with LoopbackServer(site) as first:
        with pytest.raises(PortInUseError, match=f"port {first.port}.*in use"):
            LoopbackServer(site, port=first.port).start()
        assert raw_get(first, "/img/a.jpg")[0] == 200


def test_serves_a_generated_pool_as_labelled(tmp_path):
    """Fetch every row of a small pool the way img2dataset does (urllib) and compare with the labels."""
    summary = generate_pool(tmp_path, "http://127.0.0.1:1", PoolConfig(n=120, seed=1))
    with LoopbackServer(summary.site_dir) as srv:
        rows = pq.read_table(summary.labels_path).to_pylist()
        for r in rows:
            url = r["url"].replace("127.0.0.1:1/", f"127.0.0.1:{srv.port}/")
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    status, headers, body = resp.status, resp.headers, resp.read()
            except urllib.error.HTTPError as err:
                status, headers, body = err.code, err.headers, b""
            if r["expected_status"] == "http_error":
                assert status == 404
                continue
            assert status == 200
            robots = headers.get("X-Robots-Tag")
            assert (robots is not None) == (r["expected_status"] == "opted_out")
            if r["expected_status"] in ("decode_error", "not_image"):
                with pytest.raises(OSError):
                    Image.open(io.BytesIO(body)).load()
                expected = "image/jpeg" if r["defect"] == "corrupt" else "text/"
                assert headers["Content-Type"].startswith(expected)
            else:
                assert headers["Content-Type"] == "image/jpeg"
                assert Image.open(io.BytesIO(body)).size == (r["width"], r["height"])
