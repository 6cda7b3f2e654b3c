"""From candidate rows to shard jobs: where each candidate's files are (one catalog task per source tar,
joined column-wise), then the planned stream cut into output shards, one `ShardJob` each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.engines.base import Engine
from curate.errors import CurateError
from curate.shard.reshard import ShardJob, Source, index_source, split

DIGITS = 5  # output shard ids: 00000.tar
KEY_DIGITS = 6  # position in the shard; a key is the shard id and the position: 00000000123


@dataclass(frozen=True)
class Files:
    """Every candidate row's files, aligned with the candidate table: per row its source tar (index into
    `paths`), where its files start in the per-file arrays and how many there are, its byte range
    [lo, hi) (lo = -1 when the files lie apart) and its bytes."""

    paths: list[str]
    src: np.ndarray
    start: np.ndarray
    count: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    nbytes: np.ndarray
    exts: np.ndarray  # per file, str objects
    offsets: np.ndarray  # per file
    sizes: np.ndarray  # per file


def candidate_files(engine: Engine, table: pa.Table) -> Files:
    """Catalog every source tar the candidates use (one task each), and look each candidate up."""
    if table.num_rows == 0:
        none = np.zeros(0, np.int64)
        return Files([], none, none, none, none, none, none, np.zeros(0, object), none, none)
    folder, shard = table.column("source_dir"), table.column("source_shard")
    pairs = pa.table({"d": folder, "s": shard}).group_by(["d", "s"]).aggregate([]).sort_by([("d", "ascending"),
                                                                                           ("s", "ascending")])
    srcs = [Source(d, s) for d, s in zip(pairs.column("d").to_pylist(), pairs.column("s").to_pylist(), strict=True)]
    number = {s: i for i, s in enumerate(srcs)}  # by the source each task names, whatever order results come in
    cat = pa.concat_tables([t.append_column("src", pa.array(np.full(t.num_rows, number[src], np.int64)))
                            for src, t in engine.run_tasks(index_source, srcs)])
    # candidate row -> catalog row, by (source tar, key)
    pair = pc.binary_join_element_wise(folder, shard, "\0")
    at = pc.index_in(pair, value_set=pa.array([f"{s.folder}\0{s.shard}" for s in srcs]))
    wanted = pc.binary_join_element_wise(pc.cast(at, pa.string()), table.column("source_key"), "\0")
    have = pc.binary_join_element_wise(pc.cast(cat.column("src"), pa.string()), cat.column("key"), "\0")
    row = pc.index_in(wanted, value_set=have.combine_chunks())
    if row.null_count:
        i = pc.index(pc.is_null(row), True).as_py()
        uid, key = table.column("uid")[i].as_py(), table.column("source_key")[i].as_py()
        raise CurateError(f"shard: sample {uid} (key {key}) is not in {srcs[at[i].as_py()].path}")
    rows = cat.take(row)
    exts = rows.column("exts").combine_chunks()
    count = pc.list_value_length(exts).to_numpy(zero_copy_only=False).astype(np.int64)
    start = np.zeros(len(count), np.int64)
    np.cumsum(count[:-1], out=start[1:])
    return Files([s.path for s in srcs], rows.column("src").to_numpy(), start, count, rows.column("lo").to_numpy(),
                 rows.column("hi").to_numpy(), rows.column("nbytes").to_numpy(),
                 exts.flatten().to_numpy(zero_copy_only=False),
                 rows.column("offsets").combine_chunks().flatten().to_numpy(),
                 rows.column("sizes").combine_chunks().flatten().to_numpy())


def cut(folder_file: Callable[[str], str], files: Files, order: np.ndarray, copy: np.ndarray, samples_per_shard: int,
        max_shard_bytes: int, threads: int = 1) -> tuple[list[ShardJob], list[str], list[str]]:
    """Cut the stream (candidate rows in `order`, pass numbers in `copy`) into output shards: one job each,
    and the shard name and key of every stream row. `folder_file(name)` is the path of an output file."""
    bounds = split(files.nbytes[order].tolist(), samples_per_shard, max_shard_bytes)
    digits = max(DIGITS, len(str(len(bounds) - 1)))
    positions = [f"{i:0{KEY_DIGITS}d}" for i in range(max((b - a for a, b in bounds), default=0))]
    jobs, shard_col, key_col = [], [], []
    for out_id, (a, b) in enumerate(bounds):
        stem = f"{out_id:0{digits}d}"
        prefix = f"{out_id:0{DIGITS}d}"
        keys = tuple(prefix + p for p in positions[:b - a])
        rows = order[a:b]
        used, src = np.unique(files.src[rows], return_inverse=True)
        count = files.count[rows]
        ends = np.cumsum(count)
        per_file = np.repeat(files.start[rows] - (ends - count), count) + np.arange(int(ends[-1]) if len(ends) else 0)
        info = (("unique_samples", len(np.unique(rows))),
                ("first_pass", int(copy[a]) if b > a else 0), ("last_pass", int(copy[b - 1]) if b > a else 0))
        jobs.append(ShardJob(folder_file(f"{stem}.tar"), folder_file(f"{stem}_stats.json"), f"{stem}.tar", keys,
                             tuple(files.paths[i] for i in used.tolist()), src.astype(np.int32),
                             count.astype(np.int32), tuple(files.exts[per_file].tolist()), files.offsets[per_file],
                             files.sizes[per_file], files.lo[rows], files.hi[rows], info, threads))
        shard_col += [f"{stem}.tar"] * (b - a)
        key_col += keys
    return jobs, shard_col, key_col
