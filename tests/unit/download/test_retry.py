"""--retry-failed: only the retryable failures of a finished download are fetched again, and a shard whose
failures succeed on retry has the same bytes as if they had succeeded the first time."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate import schemas
from curate.download.config import DownloadConfig
from curate.download.run import run_download
from curate.engines.local import LocalEngine
from curate.errors import CurateError
from curate.io import fs


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _config(tmp: Path, server, **kw) -> DownloadConfig:
    paths = [f"/img/{i}.jpg" for i in range(6)] + [f"/gate/{i}" for i in range(4)] + ["/missing", "/optout",
                                                                                        "/html"]
    urls = [server.base + p for p in paths]
    pq.write_table(pa.table({"url": urls, "caption": [f"caption {i}" for i in range(len(urls))],
                             "source": ["b" if i % 3 == 0 else "a" for i in range(len(urls))]}), tmp / "in.parquet")
    return DownloadConfig(input=str(tmp / "in.parquet"), shard_size=4, threads=4, timeout=5, deadline=5,
                          allow_addresses=(f"127.0.0.1:{server.port}",), **kw)


def test_retry_failed_refetches_only_retryable_rows_into_identical_bytes(bad_server, tmp_path):
    config = _config(tmp_path, bad_server)
    first = tmp_path / "first"
    stats = run_download(LocalEngine(), str(first), config)
    assert stats["rejected"] == {"http_error": 5, "opted_out": 1, "not_image": 1}
    hits_before = dict(bad_server.hits)

    bad_server.open_gate()
    stats = run_download(LocalEngine(), str(first), replace(config, retry_failed=True))
    assert stats["rejected"] == {"http_error": 1, "opted_out": 1, "not_image": 1}
    again = {p: n - hits_before.get(p, 0) for p, n in bad_server.hits.items() if n != hits_before.get(p, 0)}
    assert again == {f"/gate/{i}": 1 for i in range(4)}  # not the 404, the opt-out, the HTML or the successes

    clean = tmp_path / "clean"
    run_download(LocalEngine(), str(clean), config)  # the gate is open from the start
    assert _digest(first / "download") == _digest(clean / "download")

    hits_before = dict(bad_server.hits)
    run_download(LocalEngine(), str(first), config)  # finished: a no-op
    assert dict(bad_server.hits) == hits_before
    samples = pq.read_table(first / "download" / "samples")  # merged rows keep their input's source
    urls = pq.read_table(config.input)
    assert dict(zip(samples.column("url").to_pylist(), samples.column("source").to_pylist(), strict=True)) == dict(
        zip(urls.column("url").to_pylist(), urls.column("source").to_pylist(), strict=True))


def test_interrupted_retry_finishes_on_rerun(bad_server, tmp_path):
    config = _config(tmp_path, bad_server)
    run, clean = tmp_path / "run", tmp_path / "clean"
    run_download(LocalEngine(), str(run), config)
    bad_server.open_gate()
    run_download(LocalEngine(), str(clean), config)
    # a retry killed between its two writes: shard 1's tar already merged, its samples not yet, no marker
    (run / "download" / "_SUCCESS").unlink()
    (run / "download" / "shards" / "00001.tar").write_bytes((clean / "download" / "shards" / "00001.tar").read_bytes())
    run_download(LocalEngine(), str(run), replace(config, retry_failed=True))
    assert _digest(run / "download") == _digest(clean / "download")


def test_another_input_in_the_same_run_is_refused(bad_server, tmp_path):
    config = _config(tmp_path, bad_server)
    run_download(LocalEngine(), str(tmp_path / "run"), config)
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"url": [bad_server.base + "/img/z.jpg"]}), other)
    with pytest.raises(CurateError, match="another input"):
        run_download(LocalEngine(), str(tmp_path / "run"), replace(config, input=str(other), retry_failed=True))


def test_an_older_run_keeps_its_samples_version_on_resume_and_retry(bad_server, tmp_path):
    config = _config(tmp_path, bad_server)
    run = tmp_path / "run"
    run_download(LocalEngine(), str(run), config)
    folder = run / "download" / "samples"
    for f in folder.glob("*.parquet"):  # as a curate before samples.v3 wrote them
        fs.write_table(schemas.conform(pq.read_table(f), "samples", 2), str(f))
    (run / "download" / "_SUCCESS").unlink()
    (folder / "00002.parquet").unlink()  # killed before its last shard finished
    bad_server.open_gate()
    stats = run_download(LocalEngine(), str(run), replace(config, retry_failed=True))  # resumes, then retries
    assert stats["rejected"] == {"http_error": 1, "opted_out": 1, "not_image": 1}
    assert {pq.read_schema(f).metadata[b"curate.schema"] for f in folder.glob("*.parquet")} == {b"samples.v2"}
    assert "source" not in fs.read_table(str(folder), schema="samples").column_names
