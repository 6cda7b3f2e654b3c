"""Every request of a download goes through curate's own fetch (the guarded opener, called directly), never
through urllib's global `urlopen` or img2dataset's `download_image`: not even when `urlopen` is called with
`context=`, which makes CPython build a fresh opener that ignores an installed one (img2dataset's development
branch calls it so)."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request

import img2dataset.downloader
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.download import guard
from curate.download.config import DownloadConfig
from curate.download.guard import AddressPolicy, build_opener
from curate.download.run import run_download
from curate.engines.local import LocalEngine


def _newer_img2dataset_urlopen(calls: list):
    """urllib.request.urlopen as img2dataset's head calls it: with an SSL context."""
    real = urllib.request.urlopen

    def urlopen(url, *args, **kwargs):
        calls.append(getattr(url, "full_url", url))
        kwargs.setdefault("context", ssl.create_default_context())
        return real(url, *args, **kwargs)

    return urlopen


def test_urlopen_with_context_bypasses_an_installed_opener(bad_server):
    """Why a global opener is not enough: the guard refuses loopback, yet `urlopen(..., context=...)` gets there."""
    url = f"{bad_server.base}/img/a.jpg"
    previous = urllib.request._opener
    urllib.request.install_opener(build_opener(AddressPolicy()))
    try:
        with pytest.raises(urllib.error.URLError, match=guard.BLOCKED_PREFIX):
            urllib.request.urlopen(url, timeout=5)
        with urllib.request.urlopen(url, timeout=5, context=ssl.create_default_context()) as r:
            assert r.read()[:2] == b"\xff\xd8"  # the guard never saw it
    finally:
        urllib.request.install_opener(previous)


def test_every_request_goes_through_curates_fetch(bad_server, tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(urllib.request, "urlopen", _newer_img2dataset_urlopen(calls))
    monkeypatch.setattr(img2dataset.downloader, "download_image",
                        lambda *a, **k: calls.append("img2dataset.download_image") or (a[0][0], None, "bypass"))
    connects: list = []
    real_connect = AddressPolicy.connect

    def counted(self, address, *args, **kwargs):
        sock = real_connect(self, address, *args, **kwargs)  # raises for a refused address
        connects.append(address)
        return sock

    monkeypatch.setattr(AddressPolicy, "connect", counted)
    base = bad_server.base
    urls = [f"{base}/img/{i}.jpg" for i in range(6)] + [
        f"{base}/chain/2", f"{base}/to?url=http://169.254.169.254/latest/meta-data/",
        f"{base}/to?url=http://127.0.0.1:1/img/x.jpg", f"{base}/optout", f"{base}/missing"]
    pq.write_table(pa.table({"url": urls, "caption": [f"c{i}" for i in range(len(urls))]}), tmp_path / "in.parquet")
    config = DownloadConfig(input=str(tmp_path / "in.parquet"), shard_size=4, threads=4, timeout=5, deadline=5,
                            allow_addresses=(f"127.0.0.1:{bad_server.port}",))
    stats = run_download(LocalEngine(), str(tmp_path / "run"), config)
    assert calls == []  # neither urllib's global urlopen nor img2dataset's fetch was used
    # every request the server answered came through the guard's connect (HTTP/1.0: one connection each);
    # the two refused hops (and their hosts' robots.txt) never connected
    assert len(connects) == bad_server.requests
    assert all(port == bad_server.port for _, port in connects)
    assert stats["rejected"] == {"blocked_address": 2, "opted_out": 1, "http_error": 1}
    # robots.txt and tdmrep.json once for the host, then the 6 images, /chain/2 and its 3 hops, 2 redirects,
    # (their hops refused) the opt-out and the 404
    assert bad_server.requests == 2 + 6 + 4 + 2 + 1 + 1
