"""The download stage under a real local Spark session against the loopback pool server."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate.download.config import DownloadConfig
from curate.download.run import run_download
from curate.io.tarindex import parse_index
from curate.io.tario import index

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _config(pool: Path, server, **kw) -> DownloadConfig:
    port = server.base_url.rsplit(":", 1)[1]
    return DownloadConfig(input=str(pool / "urls.parquet"), shard_size=100, threads=16, timeout=5,
                          **({"allow_addresses": (f"127.0.0.1:{port}",)} | kw))


def test_download_resumes_into_identical_bytes(spark_engine, small_pool, tmp_path):
    pool, server = small_pool
    stats = run_download(spark_engine, str(tmp_path), _config(pool, server))
    labels = pq.read_table(pool / "labels.parquet").to_pandas().set_index("uid")
    samples = pq.read_table(tmp_path / "download" / "samples").to_pandas().set_index("uid")
    assert stats["rows_in"] == len(labels) == len(samples)
    got = samples.status.reindex(labels.index)
    assert (got == labels.expected_status).all(), labels[got != labels.expected_status].defect.value_counts()
    for tar in (tmp_path / "download" / "shards").glob("*.tar"):  # each tar's DALI index lists its members
        assert parse_index(tar.with_suffix(".idx").read_bytes()) == index(str(tar))
    before = _digest(tmp_path / "download")
    # kill after shard 1 was written but before the stage finished: marker and one shard gone
    (tmp_path / "download" / "_SUCCESS").unlink()
    (tmp_path / "download" / "samples" / "00001.parquet").unlink()
    (tmp_path / "download" / "shards" / "00001.tar").write_bytes(b"truncated")
    run_download(spark_engine, str(tmp_path), _config(pool, server))
    assert _digest(tmp_path / "download") == before


def test_loopback_is_refused_unless_allowed(spark_engine, small_pool, tmp_path):
    pool, server = small_pool
    stats = run_download(spark_engine, str(tmp_path), _config(pool, server, allow_addresses=()))
    assert stats["kept"] == 0
    assert stats["rejected"] == {"blocked_address": stats["rows_in"]}


@pytest.mark.ray
def test_ray_engine_gives_the_same_bytes_as_spark(spark_engine, small_pool, tmp_path):
    from curate.engines.ray import RayEngine

    pool, server = small_pool
    run_download(spark_engine, str(tmp_path / "spark"), _config(pool, server))
    with RayEngine(num_cpus=2) as ray_engine:
        stats = run_download(ray_engine, str(tmp_path / "ray"), _config(pool, server))
    assert stats["rows_in"] == 300
    assert _digest(tmp_path / "ray" / "download") == _digest(tmp_path / "spark" / "download")
