"""The whole download path (img2dataset's Downloader behind our guard and limits, in-process engine)
against a loopback server that misbehaves on purpose: every row gets the status it deserves."""

from __future__ import annotations

import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.download.config import DownloadConfig
from curate.download.run import run_download
from curate.engines.local import LocalEngine


def _cases(base: str, other_port: int) -> dict[str, str]:
    return {
        f"{base}/img/a.jpg": "success",
        f"{base}/slow-body": "timeout",
        f"{base}/endless": "too_large",
        f"{base}/huge-declared": "too_large",
        f"{base}/chain/3": "success",
        f"{base}/chain/12": "redirect_error",
        f"{base}/loop": "redirect_error",
        f"{base}/to?url=http://169.254.169.254/latest/meta-data/": "blocked_address",
        f"{base}/to?url=http://127.0.0.1:{other_port}/img/x.jpg": "blocked_address",
        f"{base}/to?url=http://10.0.0.1/img/x.jpg": "blocked_address",
        f"{base}/to?url=file:///etc/passwd": "blocked_address",
        "http://169.254.169.254/latest/meta-data/": "blocked_address",
        "ftp://127.0.0.1/x.jpg": "blocked_address",
        f"{base}/html": "not_image",
        f"{base}/to-html": "not_image",
        f"{base}/jpeg-as-html": "success",
        f"{base}/truncated.jpg": "decode_error",
        f"{base}/corrupt.jpg": "decode_error",
        f"{base}/bomb.png": "too_large",
        f"{base}/big.png": "too_large",
        f"{base}/flaky/a/2": "success",
        f"{base}/flaky/b/5": "http_error",
        f"{base}/optout": "opted_out",
        f"{base}/optout-other": "success",
        f"{base}/reset": "network_error",
        f"{base}/missing": "http_error",
        "": "invalid_url",
    }


@pytest.fixture(scope="module")
def fetched(module_bad_server, tmp_path_factory):
    """One download of every misbehaviour: (samples by url, stats, seconds taken, server)."""
    server = module_bad_server
    tmp = tmp_path_factory.mktemp("fetch")
    cases = _cases(server.base, 1)
    urls = list(cases)
    pq.write_table(pa.table({"url": urls, "caption": [f"c{i}" for i in range(len(urls))]}), tmp / "in.parquet")
    config = DownloadConfig(input=str(tmp / "in.parquet"), shard_size=10, threads=8, timeout=5, deadline=1.0,
                            max_body_bytes=200_000, max_pixels=1_000_000, retries=2, retry_backoff=0.05,
                            allow_addresses=(f"127.0.0.1:{server.port}",), user_agent="curate-test/1.0")
    start = time.monotonic()
    stats = run_download(LocalEngine(), str(tmp), config)
    took = time.monotonic() - start
    samples = pq.read_table(tmp / "download" / "samples").to_pandas().set_index("url")
    return cases, samples, stats, took, server


def test_every_misbehaviour_gets_its_status(fetched):
    cases, samples, stats, _, _ = fetched
    assert stats["rows_in"] == len(cases) == len(samples)
    got = {url: samples.status[url] for url in cases}
    assert got == cases
    failed = samples[samples.status != "success"]
    assert failed.error.notna().all() and (failed.error.str.len() > 0).all()  # every failure says why


def test_deadline_bounds_slow_bodies(fetched):
    _, samples, _, took, _ = fetched
    assert "deadline" in samples.error[fetched[4].base + "/slow-body"] or "timed out" in \
        samples.error[fetched[4].base + "/slow-body"]
    # the slow body would take 100 s and the endless one forever; 3 shards of 10 at 1 s deadlines do not
    assert took < 30


def test_retries_only_transient_failures(fetched):
    server = fetched[4]
    assert server.hits["/flaky/a/2"] == 3  # two 503s, then the image
    assert server.hits["/flaky/b/5"] == 3  # 1 + 2 retries, then given up
    assert server.hits["/missing"] == 1  # a 404 is final
    assert server.hits["/html"] >= 1


def test_user_agent_is_configurable(fetched):
    assert fetched[4].agents["/img/a.jpg"] == "curate-test/1.0"


def test_redirected_success_keeps_the_input_url_and_final_bytes(fetched):
    _, samples, _, _, server = fetched
    row = samples.loc[server.base + "/chain/3"]
    assert row.shard is not None and len(row.sha256) == 64


def test_pixel_cap_is_checked_before_decoding(fetched):
    _, samples, _, _, server = fetched
    assert "100000x100000" in samples.error[server.base + "/bomb.png"] or \
        "decompression bomb" in samples.error[server.base + "/bomb.png"].lower()
    assert "3000x3000" in samples.error[server.base + "/big.png"]
