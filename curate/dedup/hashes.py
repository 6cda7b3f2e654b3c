"""The hashing pass: one engine task per download shard reads its tar and hashes every kept image.

Writes `dedup/hashes/NNNNN.parquet` (schema hashes.v1: uid, md5, sha1, sha256, phash) atomically; a
shard whose file exists is skipped, so an interrupted pass resumes where it stopped. Only hashes are
written, never image bytes.
"""

from __future__ import annotations

import logging
import tarfile

import pyarrow as pa
import pyarrow.compute as pc

from curate.dedup import phash
from curate.download.status import SUCCESS
from curate.engines.base import Engine
from curate.errors import CurateError
from curate.io import fs

log = logging.getLogger(__name__)

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")


def plan(run_dir: str, samples: pa.Table, out_dir: str) -> list[dict]:
    """One task per download shard with successful rows and no hashes file yet."""
    ok = samples.filter(pc.equal(samples.column("status"), SUCCESS)).select(["uid", "shard", "key"])
    items = []
    for shard in sorted(set(ok.column("shard").to_pylist())):
        rows = ok.filter(pc.equal(ok.column("shard"), shard))
        out = fs.join(out_dir, f"{shard.removesuffix('.tar')}.parquet")
        if fs.exists(out):
            continue
        items.append({"tar": fs.join(run_dir, "download", "shards", shard), "out": out,
                      "keys": rows.column("key").to_pylist(), "uids": rows.column("uid").to_pylist()})
    return items


def hash_shard(item: dict) -> int:
    """Hash the images of one shard's kept keys and write its hashes file; returns the row count."""
    wanted = dict(zip(item["keys"], item["uids"], strict=True))
    rows: dict[str, dict] = {}
    tfs, path = fs.url_to_fs(item["tar"])
    with tfs.open(path, "rb") as fh, tarfile.open(fileobj=fh, mode="r|") as tar:
        for m in tar:
            key, _, ext = m.name.rpartition(".")
            if ext.lower() in IMAGE_EXTS and key in wanted and m.isfile():
                rows[wanted[key]] = {"uid": wanted[key], **phash.hash_image(tar.extractfile(m).read())}
    missing = [k for k, u in wanted.items() if u not in rows]
    if missing:
        raise CurateError(f"dedup: {item['tar']} lacks images for keys {missing[:3]}")
    table = pa.Table.from_pylist([rows[u] for u in sorted(rows)])
    fs.write_table(table, item["out"], schema="hashes")
    return table.num_rows


def compute(engine: Engine, run_dir: str, samples: pa.Table, out_dir: str) -> pa.Table:
    """Hash every successfully downloaded image (in parallel on the engine) and return all hashes."""
    items = plan(run_dir, samples, out_dir)
    if items:
        counts = engine.run_tasks(hash_shard, items)
        log.info("dedup: hashed %d images in %d shards", sum(counts), len(items))
    if not fs.exists(out_dir):
        return pa.Table.from_pylist([], schema=_schema())
    return fs.read_table(out_dir, schema="hashes")


def _schema() -> pa.Schema:
    from curate import schemas

    return schemas.load("hashes")
