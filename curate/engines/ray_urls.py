"""Download planning on Ray Data (see `curate.download.plan`): the same plan as `curate.engines.spark_urls`, with Ray's
shuffles. Rows are read in Ray tasks (one per input file), numbered, given uids in groups of about
BUCKET_ROWS rows (vectorised within a group) and written one part per shard by the task holding its rows;
the driver sees one count per input file and a few scalars."""

from __future__ import annotations

import hashlib
import logging
import math
from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray
import ray.data

from curate.download.config import DownloadConfig
from curate.download.inputs import FILE, ROW, UID_PATTERN, URLS_VERSION, InputFile, file_rows
from curate.errors import CurateError
from curate.io import dataset, fs

log = logging.getLogger(__name__)
BUCKET_ROWS = 100_000
POS, SHARD, BUCKET = "_pos", "_shard", "_bucket"


class _ReadFiles:
    def __init__(self, config: DownloadConfig) -> None:
        self.config = config

    def __call__(self, batch: pa.Table) -> pa.Table:
        tables = [file_rows(self.config, InputFile(d["index"], d["path"], d["size"])) for d in batch.to_pylist()]
        return pa.concat_tables(tables)


def _file_counts(batch: pa.Table) -> pa.Table:
    uid = batch.column("uid")
    bad = pc.or_(pc.is_null(uid), pc.invert(pc.match_substring_regex(uid, UID_PATTERN))).fill_null(True)
    t = pa.table({FILE: batch.column(FILE), "bad": pc.cast(bad, pa.int64())})
    return t.group_by(FILE).aggregate([("bad", "count"), ("bad", "sum")])


class _Place:
    """Adds each row's position in the input and its shard."""

    def __init__(self, offsets: dict[int, int], shard_size: int) -> None:
        self.offsets, self.shard_size = offsets, shard_size

    def __call__(self, batch: pa.Table) -> pa.Table:
        start = np.array([self.offsets[f] for f in batch.column(FILE).to_pylist()], dtype=np.int64)
        pos = start + batch.column(ROW).to_numpy()
        return batch.append_column(POS, pa.array(pos)).append_column(SHARD, pa.array(pos // self.shard_size))


class _Bucket:
    """Sets the bucket a row is grouped in: by its (url, caption) pair, or by its uid."""

    def __init__(self, buckets: int, by_pair: bool) -> None:
        self.buckets, self.by_pair = buckets, by_pair

    def __call__(self, batch: pa.Table) -> pa.Table:
        key = _pair_keys(batch) if self.by_pair else batch.column("uid").to_pylist()
        bucket = pa.array([int.from_bytes(hashlib.blake2b(k.encode(), digest_size=4).digest(), "big")
                           % self.buckets for k in key], pa.int64())
        if BUCKET in batch.column_names:
            return batch.set_column(batch.column_names.index(BUCKET), BUCKET, bucket)
        return batch.append_column(BUCKET, bucket)


def _pair_keys(batch: pa.Table) -> list[str]:
    """A string per (url, caption) pair that tells a null caption from an empty one (as a Python dict does)."""
    return [f"{u}\x00{'' if c is None else 's' + c}" for u, c in
            zip(batch.column("url").to_pylist(), batch.column("caption").to_pylist(), strict=True)]


def _number(group: pa.Table) -> pa.Table:
    """uids for one bucket of pairs: a pair's n-th row in input order gets the suffix n (inputs.derive_uids)."""
    keys = np.array(_pair_keys(group), dtype=object)
    pos = group.column(POS).to_numpy()
    order = np.lexsort((pos, keys))
    sk = keys[order]
    start = np.concatenate([[True], sk[1:] != sk[:-1]])
    first = np.maximum.accumulate(np.where(start, np.arange(len(sk)), 0))
    n = np.empty(len(sk), dtype=np.int64)
    n[order] = np.arange(len(sk)) - first
    urls, caps = group.column("url").to_pylist(), group.column("caption").to_pylist()
    uids = []
    for u, c, k in zip(urls, caps, n.tolist(), strict=True):
        text = f"{u}\x00{c or ''}" + (f"\x00{k}" if k else "")
        uids.append(hashlib.sha256(text.encode()).hexdigest()[:32])
    return group.set_column(group.column_names.index("uid"), "uid", pa.array(uids, pa.string()))


def _repeats(group: pa.Table) -> pa.Table:
    uids = group.column("uid")
    return pa.table({"extra": [len(uids) - pc.count_distinct(uids).as_py()]})


def _write_shard(urls_dir: str, group: pa.Table) -> pa.Table:
    group = group.sort_by(POS)
    shard = group.column(SHARD)[0].as_py()
    size = dataset.write_part(group, fs.join(urls_dir, dataset.shard_part_name(shard)), "urls", URLS_VERSION)
    return pa.table({"rows": [group.num_rows], "bytes": [size]})


def plan_on_ray(config: DownloadConfig, files: list[InputFile], given: bool, urls_dir: str) -> int:
    """Write `urls_dir/NNNNN.parquet` for every shard of the input; returns the row count."""
    items = [{"index": f.index, "path": f.path, "size": f.size} for f in files]
    rows = (ray.data.from_items(items, override_num_blocks=len(items))
            .map_batches(_ReadFiles(config), batch_size=1, batch_format="pyarrow", num_cpus=0.5)).materialize()
    counts = rows.map_batches(_file_counts, batch_format="pyarrow", batch_size=None).to_arrow_refs()
    # blocks may differ in types (an empty block reads as nulls): permissive, then aggregate
    # one small row per Ray block (a block holds one input file's rows: one read task per file), so about input
    # bytes / DataContext.target_max_block_size (128 MiB) plus one per file: shard metadata, whatever the row count
    got = ray.get(counts)
    counted = pa.concat_tables([t for t in got if t.num_rows] or got[:1], promote_options="permissive")
    per_file = counted.group_by(FILE).aggregate([("bad_count", "sum"), ("bad_sum", "sum")])
    if given and pc.sum(per_file.column("bad_sum_sum")).as_py():
        bad = rows.map_batches(_bad_uids, batch_format="pyarrow").take(1)
        raise CurateError(f"{config.input}: uid {bad[0]['uid']!r} is not 32 lowercase hex characters")
    n_by_file = dict(zip(per_file.column(FILE).to_pylist(), per_file.column("bad_count_sum").to_pylist(), strict=True))
    offsets, total = {}, 0
    for f in sorted(n_by_file):
        offsets[f], total = total, total + n_by_file[f]
    if total == 0:
        return 0
    buckets = max(1, math.ceil(total / BUCKET_ROWS))
    rows = rows.map_batches(_Place(offsets, config.shard_size), batch_format="pyarrow")
    if not given:
        rows = (rows.map_batches(_Bucket(buckets, by_pair=True), batch_format="pyarrow")
                .groupby(BUCKET).map_groups(_number, batch_format="pyarrow"))
    rows = rows.materialize()
    check = rows.map_batches(_Bucket(buckets, by_pair=False), batch_format="pyarrow")
    extra = sum(r["extra"] for r in check.groupby(BUCKET).map_groups(_repeats, batch_format="pyarrow").take_all())
    if extra:
        raise CurateError(f"{config.input}: uids are not unique ({extra} repeats)")
    written = rows.groupby(SHARD).map_groups(partial(_write_shard, urls_dir), batch_format="pyarrow").take_all()
    if sum(w["rows"] for w in written) != total:
        raise CurateError(f"download: planned {total} rows but wrote {sum(w['rows'] for w in written)}; "
                          f"remove {urls_dir} and rerun")
    log.info("download: %d rows planned into %d shards on Ray", total, len(written))
    return total


def _bad_uids(batch: pa.Table) -> pa.Table:
    uid = batch.column("uid")
    bad = pc.or_(pc.is_null(uid), pc.invert(pc.match_substring_regex(uid, UID_PATTERN))).fill_null(True)
    return batch.filter(bad).select(["uid"])
