"""The hashing pass: one engine task per download shard reads its tar and hashes every kept image.

Writes `dedup/hashes/NNNNN.parquet` (schema hashes.v2: uid, md5, sha1, sha256, phash, pdq) atomically, one part
per download shard, from a task that reads that shard's samples part and tar itself; a shard whose part
exists is skipped (one listing), so an interrupted pass resumes where it stopped. Only hashes are written,
never image bytes. A sample whose files an earlier dedup removed from the tar (a later hash list listed it,
`curate.dedup.purge`) takes its hashes from `download/purged/NNNNN.parquet`, so it is decided again.
"""

from __future__ import annotations

import logging
import tarfile

import pyarrow as pa
import pyarrow.compute as pc

from curate import schemas
from curate.dedup import phash
from curate.download.status import SUCCESS
from curate.errors import CurateError
from curate.io import dataset, fs, sums

log = logging.getLogger(__name__)

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
VERSION = 2  # hashes.v2 adds PDQ; v1 parts (no pdq column) are still read, their PDQ as null
PURGED = "purged"  # download/purged/NNNNN.parquet: hashes of the samples whose files dedup removed


def plan(run_dir: str, out_dir: str) -> list[dict]:
    """One task per download shard without a hashes part yet: two listings, one descriptor per shard."""
    samples_dir, purged_dir = fs.join(run_dir, "download", "samples"), fs.join(run_dir, "download", PURGED)
    done, purged = dataset.finished_parts(out_dir), dataset.list_parts(purged_dir)
    return [{"samples": fs.join(samples_dir, name), "tar": fs.join(run_dir, "download", "shards",
                                                                   name.removesuffix(dataset.SUFFIX) + ".tar"),
             "out": fs.join(out_dir, name), **({"purged": fs.join(purged_dir, name)} if name in purged else {})}
            for name in dataset.list_parts(samples_dir) if name not in done]


def hash_shard(item: dict) -> dict:
    """Hash the images of one shard's successful rows and write its hashes part (empty when it has none)."""
    samples = dataset.read_part(item["samples"], ["uid", "status", "key"])
    ok = samples.filter(pc.equal(samples.column("status"), SUCCESS))
    wanted = dict(zip(ok.column("key").to_pylist(), ok.column("uid").to_pylist(), strict=True))
    rows: dict[str, dict] = {}
    if wanted:
        try:  # checked against its sidecar when read through, before the hashes part is written
            with sums.open_verified(item["tar"]) as fh, tarfile.open(fileobj=fh, mode="r|") as tar:
                for m in tar:
                    key, _, ext = m.name.rpartition(".")
                    if ext.lower() in IMAGE_EXTS and key in wanted and m.isfile():
                        body = tar.extractfile(m).read()
                        rows[wanted[key]] = {"uid": wanted[key], **phash.hash_image(body, pdq=True)}
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise CurateError(f"dedup: cannot read {item['tar']}: {exc}") from exc
    if item.get("purged"):  # files removed by an earlier dedup: their recorded hashes
        uids = set(wanted.values())
        for row in dataset.read_part(item["purged"], ["uid", "md5", "sha1", "sha256", "phash", "pdq"]).to_pylist():
            if row["uid"] in uids:
                rows.setdefault(row["uid"], row)
    missing = [k for k, u in wanted.items() if u not in rows]
    if missing:
        raise CurateError(f"dedup: {item['tar']} lacks images for keys {missing[:3]}")
    table = pa.Table.from_pylist([rows[u] for u in sorted(rows)], schema=schemas.load("hashes", VERSION))
    dataset.write_part(table, item["out"], "hashes", VERSION)
    return {"shards": 1, "images": table.num_rows}


def compute(engine, run_dir: str, out_dir: str) -> dict:
    """Hash every successfully downloaded image, one engine task per shard still to do."""
    items = plan(run_dir, out_dir)
    got = engine.for_each(hash_shard, items) if items else {}
    log.info("dedup: hashed %d images in %d shards", got.get("images", 0), len(items))
    return got
