"""The driver holds shards, never rows: `curate dedup` runs with `spark.driver.maxResultSize` far below the
size of its tables (1 MiB against ~50 MB of rows), so any collect of rows would fail it; and the same
setting does fail a job that collects the table, so the bound is real."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from curate import schemas
from curate.io import dataset, fs

# ~50 s: make test-long (`bench scale` also holds every stage to a 16 MiB result cap)
pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.long]

ROWS, SHARDS = 200_000, 20
BOUND = ["--spark-conf", "spark.driver.maxResultSize=1m"]


def _write_download(run: str) -> None:
    """A finished download of ROWS samples in SHARDS parts, with their hashes parts: 3% repeated images,
    2% repeated URLs, 1% near copies."""
    rng = np.random.default_rng(0)
    idx = np.arange(ROWS)
    img = np.where(rng.random(ROWS) < 0.03, rng.integers(0, ROWS, ROWS), idx)
    url = np.where(rng.random(ROWS) < 0.02, rng.integers(0, ROWS, ROWS), idx)
    base = rng.integers(0, 2**63, ROWS, dtype=np.int64).view(np.uint64)
    near = rng.random(ROWS) < 0.01  # a near copy: another row's pHash with one bit flipped (its own bytes)
    src = np.where(near, rng.integers(0, ROWS, ROWS), img)
    ph = base[src] ^ np.where(near, np.uint64(1) << rng.integers(0, 64, ROWS).astype(np.uint64), np.uint64(0))
    per = ROWS // SHARDS
    for s in range(SHARDS):
        sl = slice(s * per, (s + 1) * per)
        uids = [f"{int(i):032x}" for i in rng.integers(0, 2**62, per) * 4 + s % 4]
        samples = {"uid": uids, "url": [f"http://h{u % 3000}.org/{u}.jpg" for u in url[sl]],
                   "caption": [f"photo {i % 500}" for i in idx[sl]], "status": ["success"] * per,
                   "sha256": [f"{i:064x}" for i in img[sl]], "shard": [f"{s:05d}.tar"] * per,
                   "key": [f"{s:05d}{j:05d}" for j in range(per)]}
        t = pa.table(samples)
        for f in schemas.load("samples", 3):
            if f.name not in t.column_names:
                t = t.append_column(f.name, pa.nulls(per, f.type))
        dataset.write_part(t, fs.join(run, "download", "samples", f"{s:05d}.parquet"), "samples", 3)
        h = pa.table({"uid": uids, "md5": [f"{i:032x}" for i in img[sl]], "sha1": [f"{i:040x}" for i in img[sl]],
                      "sha256": samples["sha256"], "phash": [f"{int(p):016x}" for p in ph[sl]]})
        dataset.write_part(h, fs.join(run, "dedup", "hashes", f"{s:05d}.parquet"), "hashes")
    fs.write_bytes(fs.join(run, "download", "_SUCCESS"), b"")


def _env(tmp) -> dict:
    return {**os.environ, "TMPDIR": str(tmp), "SPARK_LOCAL_IP": "127.0.0.1"}


def test_dedup_runs_with_the_driver_unable_to_collect_rows(tmp_path):
    run = str(tmp_path / "run")
    _write_download(run)
    table_bytes = sum(dataset.list_parts(fs.join(run, "download", "samples")).values())
    assert table_bytes > 4 * 2**20  # compressed, 4x the 1 MiB bound; far more as rows on the driver
    proc = subprocess.run([sys.executable, "-m", "curate.cli", "-q", "dedup", run, *BOUND], env=_env(tmp_path),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = fs.read_json(fs.join(run, "dedup", "_stats.json"))
    assert stats["rows_in"] == ROWS and stats["rejected"]["duplicate_image"] > 0
    assert stats["rejected"]["near_duplicate"] > 0

    collect = ("import sys, pyarrow as pa; from curate.engines.spark import SparkEngine; "
               "from curate import schemas\n"
               "with SparkEngine(conf={'spark.driver.maxResultSize': '1m'}) as e:\n"
               "    e.read_dataset(sys.argv[1], schemas.load('dedup')).collect()\n")
    proc = subprocess.run([sys.executable, "-c", collect, fs.join(run, "dedup", "decisions")], env=_env(tmp_path),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and "maxResultSize" in proc.stderr
