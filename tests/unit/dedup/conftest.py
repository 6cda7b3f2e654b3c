"""Dedup test runs: samples and hashes written as the download and hashing passes write them (parts per
shard), then the Spark rules, then the decisions read back."""

from __future__ import annotations

import pyarrow as pa
import pytest

from curate import schemas
from curate.dedup.config import DedupConfig
from curate.dedup.refs import Refs
from curate.io import dataset, fs


def write_run(folder, rows: list[dict], shards: int = 2, hashes: bool = True) -> tuple[str, str]:
    """Rows {uid, url, caption, sha256, md5, phash, pdq?, status?} as samples and hashes parts, dealt to shards."""
    samples_dir, hashes_dir = fs.join(str(folder), "samples"), fs.join(str(folder), "hashes")
    sample_schema = schemas.load("samples", 3)
    for s in range(shards):
        mine = rows[s::shards]
        srows = [{"uid": r["uid"], "url": r["url"], "caption": r.get("caption"), "status": r.get("status", "success"),
                  "sha256": r.get("sha256"), "shard": f"{s:05d}.tar", "key": f"{s:05d}{i:04d}"}
                 for i, r in enumerate(mine)]
        table = pa.Table.from_pylist(srows)
        for f in sample_schema:
            if f.name not in table.column_names:
                table = table.append_column(f.name, pa.nulls(table.num_rows, f.type))
        dataset.write_part(table, fs.join(samples_dir, f"{s:05d}.parquet"), "samples", 3)
        if hashes:  # hashes.v1 parts as older runs wrote them, v2 (with PDQ) where a row has a pdq
            version = 2 if any("pdq" in r for r in rows) else 1
            ok = [r for r in mine if r.get("status", "success") == "success"]
            h = pa.Table.from_pylist([{"uid": r["uid"], "md5": r.get("md5") or "m", "sha1": "x" * 40,
                                       "sha256": r.get("sha256") or "s", "phash": r.get("phash"),
                                       "pdq": r.get("pdq")} for r in ok], schema=schemas.load("hashes", version))
            dataset.write_part(h, fs.join(hashes_dir, f"{s:05d}.parquet"), "hashes", version)
    return samples_dir, hashes_dir


@pytest.fixture()
def decide_rows(spark_engine, tmp_path):
    """decide_rows(rows, config, safety, evalset, hashes=True) -> {uid: (reason, duplicate_of)} from Spark."""
    counter = iter(range(1000))

    def run(rows, config=None, safety=None, evalset=None, hashes=True, shards=2):
        folder = tmp_path / f"run{next(counter)}"
        samples_dir, hashes_dir = write_run(folder, rows, shards, hashes)
        out = str(folder / "decisions")
        from curate.engines.spark_dedup import decide

        decide(spark_engine, samples_dir, hashes_dir, config or DedupConfig(), safety or Refs(),
                     evalset or Refs(), out, str(folder / "_work"))
        table = fs.read_table(out, schema="dedup")
        assert table.column("uid").to_pylist() == sorted(table.column("uid").to_pylist()) or shards > 1
        return {r["uid"]: (r["reason"], r["duplicate_of"]) for r in table.to_pylist()}

    return run
