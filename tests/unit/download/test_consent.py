"""Consent before a byte is stored, against the misbehaving loopback server: robots.txt (once per host per run,
through the guarded fetch, for every redirect hop too), TDMRep (header and tdmrep.json), X-Robots-Tag read
before the body, extract's opt_out column, denylists, and the flags that turn the checks off."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.dedup.url import canonical_url
from curate.download.config import DownloadConfig
from curate.download.run import run_download
from curate.engines.local import LocalEngine
from curate.errors import CurateError

ROBOTS = "User-agent: *\nDisallow: /img/private-\n\nUser-agent: img2dataset\nDisallow: /img/no-i2d-\n"


def _run(tmp_path, server, urls: list[str], name: str = "run", extra: dict | None = None, **kw):
    table = {"url": urls, "caption": [f"c{i}" for i in range(len(urls))], **(extra or {})}
    pq.write_table(pa.table(table), tmp_path / f"{name}.parquet")
    config = DownloadConfig(input=str(tmp_path / f"{name}.parquet"), shard_size=3, threads=4, timeout=5,
                            **({"deadline": 5, "allow_addresses": (f"127.0.0.1:{server.port}",)} | kw))
    stats = run_download(LocalEngine(), str(tmp_path / name), config)
    samples = pq.read_table(tmp_path / name / "download" / "samples").to_pylist()
    return stats, {r["url"]: r for r in samples}, config


def test_robots_txt_once_per_host_per_run_and_every_hop_checked(bad_server, tmp_path):
    bad_server.set(robots=ROBOTS, robots_by_host={"localhost": "User-agent: *\nDisallow: /\n"})
    b, other = bad_server.base, f"http://localhost:{bad_server.port}"
    urls = [f"{b}/img/ok-{i}.jpg" for i in range(7)] + [
        f"{b}/img/private-1.jpg", f"{b}/img/no-i2d-1.jpg",
        f"{b}/to?url=http://169.254.169.254/latest/meta-data/",  # allowed by robots.txt, then a blocked hop
        f"{b}/to?url={other}/img/ok-9.jpg"]  # a hop to a host whose robots.txt disallows everything
    stats, rows, config = _run(tmp_path, bad_server, urls)
    assert {u: r["status"] for u, r in rows.items()} == {
        **{u: "success" for u in urls[:7]}, urls[7]: "robots_disallowed", urls[8]: "robots_disallowed",
        urls[9]: "blocked_address", urls[10]: "robots_disallowed"}
    assert bad_server.hits["/img/private-1.jpg"] == bad_server.hits["/img/no-i2d-1.jpg"] == 0
    assert bad_server.hits["/img/ok-9.jpg"] == 0 and bad_server.hits["/to"] == 2
    # one robots.txt per host (127.0.0.1:PORT and localhost:PORT) in a run of 4 shards and 4 threads
    assert bad_server.hits["/robots.txt"] == 2
    assert "robots.txt disallows" in rows[urls[7]]["error"] and "169.254.169.254" in rows[urls[9]]["error"]
    assert stats["checks"]["robots"] is True and stats["checks"]["tdmrep"] is True
    # kept in the run: a retry of the failures and a rerun ask nobody again
    run_download(LocalEngine(), str(tmp_path / "run"), replace(config, retry_failed=True))
    assert bad_server.hits["/robots.txt"] == 2
    cached = sorted(p.name for p in (tmp_path / "run" / "download" / "_consent").iterdir())
    assert len(cached) == 2 and all(n.endswith(".json") for n in cached)


def test_no_robots_fetches_no_robots_txt(bad_server, tmp_path):
    bad_server.set(robots="User-agent: *\nDisallow: /\n")
    urls = [f"{bad_server.base}/img/a.jpg", f"{bad_server.base}/img/b.jpg"]
    stats, rows, _ = _run(tmp_path, bad_server, urls, robots=False)
    assert stats["rejected"] == {} and bad_server.hits["/robots.txt"] == 0
    assert stats["checks"]["robots"] is False


def test_robots_txt_answering_5xx_disallows_the_host(bad_server, tmp_path):
    bad_server.set(robots_by_host={"localhost": "HTTP 503"})  # RFC 9309: unreachable means disallow all
    urls = [f"http://localhost:{bad_server.port}/img/a.jpg", f"{bad_server.base}/img/b.jpg"]
    stats, rows, _ = _run(tmp_path, bad_server, urls)
    assert rows[urls[0]]["status"] == "robots_disallowed" and "503" in rows[urls[0]]["error"]
    assert rows[urls[1]]["status"] == "success" and bad_server.hits["/img/a.jpg"] == 0
    # not kept in the run: another run asks again
    assert [p.name for p in (tmp_path / "run" / "download" / "_consent").iterdir()] == [
        p.name for p in (tmp_path / "run" / "download" / "_consent").iterdir() if p.name.startswith("127.0.0.1")]


def test_tdmrep_header_and_well_known_file(bad_server, tmp_path):
    bad_server.set(tdmrep=json.dumps([
        {"location": "/img/free-*", "tdm-reservation": 0},
        {"location": "/img/*", "tdm-reservation": 1, "tdm-policy": "https://example.org/policy.json"}]))
    b = bad_server.base
    urls = [f"{b}/img/free-1.jpg", f"{b}/img/x.jpg", f"{b}/tdm-header", f"{b}/chain/1"]
    stats, rows, _ = _run(tmp_path, bad_server, urls)
    assert {u: r["status"] for u, r in rows.items()} == {urls[0]: "success", urls[1]: "tdm_reserved",
                                                         urls[2]: "tdm_reserved", urls[3]: "tdm_reserved"}
    assert bad_server.hits["/img/x.jpg"] == 0  # reserved by the file: never requested
    assert "example.org/policy.json" in rows[urls[1]]["error"] and "tdm-reservation: 1" in rows[urls[2]]["error"]
    assert bad_server.hits["/img/chain-end.jpg"] == 0  # /chain/1's hop lands on a reserved path: refused
    assert bad_server.hits["/.well-known/tdmrep.json"] == 1
    stats, rows, _ = _run(tmp_path, bad_server, urls, name="off", tdmrep=False)
    assert stats["rejected"] == {} and stats["checks"]["tdmrep"] is False


def test_opt_out_headers_are_read_before_the_body(bad_server, tmp_path):
    url = f"{bad_server.base}/optout-slow"  # headers, then no body until the client hangs up
    start = time.monotonic()
    stats, rows, _ = _run(tmp_path, bad_server, [url], deadline=20)
    assert rows[url]["status"] == "opted_out" and "noai" in rows[url]["error"]
    assert bad_server.closed_before_body["/optout-slow"]  # the client hung up; no body byte was ever sent
    assert time.monotonic() - start < 20  # reading the body would have waited for the 20 s deadline


def test_extract_opt_out_column_is_never_requested(bad_server, tmp_path):
    urls = [f"{bad_server.base}/img/a.jpg", f"{bad_server.base}/img/b.jpg"]
    stats, rows, _ = _run(tmp_path, bad_server, urls, extra={"opt_out": [True, False]})
    assert rows[urls[0]]["status"] == "opted_out" and rows[urls[1]]["status"] == "success"
    assert bad_server.hits["/img/a.jpg"] == 0


def test_denylists_in_every_format_drop_rows_before_any_request(bad_server, tmp_path):
    b = bad_server.base
    urls = [f"{b}/img/{i}.jpg" for i in range(6)] + [f"http://localhost:{bad_server.port}/img/6.jpg"]
    (tmp_path / "urls.txt").write_text(f"# listed URLs\n{b.upper()}/img/0.jpg?utm_source=x#frag\n")
    pq.write_table(pa.table({"url_canonical": [canonical_url(f"{b}/img/1.jpg")]}), tmp_path / "canon.parquet")
    (tmp_path / "domains.csv").write_text("domain,why\nlocalhost,test\n")
    lists = (str(tmp_path / "urls.txt"), str(tmp_path / "canon.parquet"), str(tmp_path / "domains.csv"),
             str(tmp_path / "uids.txt"))
    from curate.download.inputs import derive_uids

    (tmp_path / "uids.txt").write_text(derive_uids([urls[2]], ["c2"])[0] + "\n")
    stats, rows, _ = _run(tmp_path, bad_server, urls, denylists=lists)
    denied = {u for u, r in rows.items() if r["status"] == "denylisted"}
    assert denied == {urls[0], urls[1], urls[2], urls[6]}
    assert stats["rejected"] == {"denylisted": 4} and stats["rows_in"] == 7
    assert all(bad_server.hits[f"/img/{i}.jpg"] == 0 for i in (0, 1, 2, 6))
    assert stats["checks"]["denylists"] == list(lists)


def test_missing_or_bad_denylist_is_a_one_line_error(bad_server, tmp_path):
    with pytest.raises(CurateError, match="no such file"):
        _run(tmp_path, bad_server, [f"{bad_server.base}/img/a.jpg"], denylists=(str(tmp_path / "none.txt"),))
    (tmp_path / "bad.txt").write_text("not a domain at all\n")
    with pytest.raises(CurateError, match=r"entry 1 .* not a URL, domain or uid"):
        _run(tmp_path, bad_server, [f"{bad_server.base}/img/a.jpg"], name="bad",
             denylists=(str(tmp_path / "bad.txt"),))


def test_denylists_and_hash_lists_are_read_from_an_object_store(bad_server, tmp_path):
    import fsspec

    from curate.download.denylist import load_denylists

    mem = fsspec.filesystem("memory")
    b = bad_server.base
    with mem.open("/lists/deny.csv", "wb") as fh:
        fh.write(f"url\n{b}/img/0.jpg\n".encode())
    with mem.open("/lists/deny.parquet", "wb") as fh:
        pq.write_table(pa.table({"domain": ["Example.COM"]}), fh)
    deny = load_denylists(("memory://lists/deny.csv", "memory://lists/deny.parquet"))
    assert deny.reason("0" * 32, "http://img.example.com/a.jpg") == "its domain example.com is on a denylist"
    urls = [f"{b}/img/0.jpg", f"{b}/img/1.jpg"]
    stats, rows, _ = _run(tmp_path, bad_server, urls, denylists=("memory://lists/deny.csv",))
    assert rows[urls[0]]["status"] == "denylisted" and rows[urls[1]]["status"] == "success"
    assert bad_server.hits["/img/0.jpg"] == 0
    mem.rm("/lists", recursive=True)
