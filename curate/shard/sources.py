"""Where the shard stage's samples come from: the selection (our `select/uids.npy` or any DataComp-format
`u8,u8` array), the bytes (our download shards, or img2dataset/DataComp shards: a tar and a parquet per
shard), and the safety gate (dedup's decisions: a safety-listed or non-surviving uid is never written)."""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate import schemas
from curate.errors import CurateError
from curate.io import fs
from curate.select.run import u8u8_to_uids

log = logging.getLogger(__name__)

SAFETY_REASON = "safety_hash_list"
FIXED_SCORES = ("clip_similarity", "language", "language_score")
# the columns every candidate row carries, besides dynamic float32 score columns
COLUMNS = ("uid", "caption", *FIXED_SCORES, "weight", "source_dir", "source_shard", "source_key")


@dataclass(frozen=True)
class Candidates:
    """Samples allowed to be written (sorted by uid), the dynamic score columns, and what was refused."""

    table: pa.Table
    score_columns: tuple[str, ...]
    refused: dict[str, int]


def read_uids(path: str) -> tuple[list[str], np.ndarray]:
    """A DataComp `u8,u8` array as (sorted unique hex uids, multiplicity): a uid listed k times counts k."""
    sfs, p = fs.url_to_fs(path)
    if not sfs.exists(p):
        raise CurateError(f"shard: no such uid file: {path}")
    try:
        with sfs.open(p, "rb") as fh:
            arr = np.load(fh)
    except (ValueError, OSError) as exc:
        raise CurateError(f"shard: {path} is not a .npy file: {exc}") from exc
    if arr.dtype.names is None or len(arr.dtype.names) != 2 or arr.dtype != np.dtype("u8,u8"):
        raise CurateError(f"shard: {path} is {arr.dtype}, not DataComp's u8,u8 uid array")
    uniq, mult = np.unique(arr, return_counts=True)
    return u8u8_to_uids(uniq), mult.astype(np.float64)


def _our_samples(run_dir: str) -> tuple[pa.Table, tuple[str, ...]]:
    """This run's downloaded samples with their scores and where their bytes are."""
    samples = fs.read_table(fs.join(run_dir, "download", "samples"), schema="samples")
    samples = samples.filter(pc.is_valid(samples.column("shard")))
    scores = fs.read_table(fs.join(run_dir, "score", "scores"), schema="scores")
    taken = set(schemas.load("manifest", 2).names)
    dynamic = tuple(f.name for f in scores.schema if f.type == pa.float32() and f.name not in taken)
    table = (samples.select(["uid", "caption", "shard", "key"])
             .join(scores.select(["uid", *FIXED_SCORES, *dynamic]), "uid", join_type="left outer"))
    table = table.rename_columns({"shard": "source_shard", "key": "source_key"})
    src = fs.join(run_dir, "download", "shards")
    return table.append_column("source_dir", pa.array([src] * table.num_rows, pa.string())), dynamic


def _external_samples(source: str) -> pa.Table:
    """img2dataset/DataComp shards: `NNNNN.tar` beside `NNNNN.parquet` (key, caption, status, optional uid)."""
    sfs, root = fs.url_to_fs(source)
    if not sfs.isdir(root):
        raise CurateError(f"shard: --source-shards {source} is not a folder")
    parquets = sorted(f for f in sfs.ls(root, detail=False)
                      if f.endswith(".parquet") and sfs.exists(f[: -len(".parquet")] + ".tar"))
    if not parquets:
        raise CurateError(f"shard: no shards (NNNNN.tar with NNNNN.parquet) in {source}")
    parts = []
    for f in parquets:
        t = pq.read_table(f, filesystem=sfs)
        if "key" not in t.column_names:
            raise CurateError(f"shard: {f} has no 'key' column (not an img2dataset shard parquet)")
        if "status" in t.column_names:
            t = t.filter(pc.equal(t.column("status"), "success"))
        key = t.column("key").cast(pa.string())
        uid = t.column("uid").cast(pa.string()) if "uid" in t.column_names else key
        caption = t.column("caption").cast(pa.string()) if "caption" in t.column_names else pa.nulls(t.num_rows,
                                                                                                     pa.string())
        name = os.path.basename(f)[: -len(".parquet")] + ".tar"
        parts.append(pa.table({"uid": uid, "caption": caption, "source_shard": pa.array([name] * t.num_rows),
                               "source_key": key}))
    table = pa.concat_tables(parts)
    table = table.append_column("source_dir", pa.array([fs.join(source)] * table.num_rows, pa.string()))
    for col, typ in (("clip_similarity", pa.float32()), ("language", pa.string()), ("language_score", pa.float32())):
        table = table.append_column(col, pa.nulls(table.num_rows, typ))
    return table


def _dedup(run_dir: str, required: bool) -> tuple[pa.Array, pa.Array, pa.Array | None]:
    """(safety-listed uids, other dedup rejects, every uid dedup decided on, or None without a decisions table)
    from dedup/decisions/."""
    path = fs.join(run_dir, "dedup", "decisions")
    if not fs.exists(path):
        if required:
            raise CurateError(f"shard: {path} is missing; run `curate dedup` first")
        log.warning("shard: no %s: the safety hash lists cannot be applied to this selection", path)
        none = pa.array([], pa.string())
        return none, none, None
    t = fs.read_table(path, columns=["uid", "reason"])
    uids, reason = t.column("uid"), t.column("reason")
    safety = pc.equal(reason, SAFETY_REASON)
    other = pc.and_(pc.is_valid(reason), pc.invert(pc.fill_null(safety, False)))
    return (uids.filter(pc.fill_null(safety, False)).combine_chunks(), uids.filter(other).combine_chunks(),
            uids.combine_chunks())


def _weights(run_dir: str, uids: pa.Array) -> np.ndarray:
    """Select's per-sample repetition weight (decisions.weight of kept rows) if it wrote one, else 1.0."""
    path = fs.join(run_dir, "select", "decisions.parquet")
    if not fs.exists(path) or "weight" not in fs.read_schema(path).names:
        return np.ones(len(uids))
    t = fs.read_table(path, columns=["uid", "weight"])
    at = pc.index_in(uids, value_set=t.column("uid").combine_chunks())  # null: select wrote no row for it
    weight = pc.take(t.column("weight").combine_chunks(), at)
    return pc.fill_null(weight.cast(pa.float64()), 1.0).to_numpy(zero_copy_only=False)


def load(run_dir: str, uids_file: str | None = None, source_shards: str | None = None) -> Candidates:
    """The selected samples that may be written, joined with their bytes' location and scores."""
    own_selection = uids_file is None
    uid_list, mult = read_uids(uids_file or fs.join(run_dir, "select", "uids.npy"))
    uids = pa.array(uid_list, pa.string())
    weights = mult * (_weights(run_dir, uids) if own_selection else 1.0)
    if source_shards is None:
        samples, dynamic = _our_samples(run_dir)
    else:
        samples, dynamic = _external_samples(source_shards), ()
    safety, other, decided = _dedup(run_dir, required=source_shards is None)
    is_safety = pc.is_in(uids, value_set=safety).to_numpy(zero_copy_only=False)
    not_survivor = pc.is_in(uids, value_set=other).to_numpy(zero_copy_only=False)
    if source_shards is None and decided is not None:  # our own run: a uid must be one dedup decided on
        not_survivor |= ~pc.is_in(uids, value_set=decided).to_numpy(zero_copy_only=False)
    not_survivor &= ~is_safety
    refused: Counter = Counter()
    if is_safety.any():
        refused[SAFETY_REASON] = int(is_safety.sum())
    if not_survivor.any():
        refused["not_dedup_survivor"] = int(not_survivor.sum())
    keep = np.flatnonzero(~(is_safety | not_survivor))
    sel = pa.table({"uid": uids.take(pa.array(keep, pa.int64())), "weight": pa.array(weights[keep], pa.float64())})
    table = sel.join(samples, "uid", join_type="inner").sort_by([("uid", "ascending")])
    if table.num_rows != sel.num_rows:
        missing = sel.num_rows - table.num_rows
        if source_shards is None:
            raise CurateError(f"shard: {missing} selected uids are not in the download or score outputs of this run")
        refused["not_in_source_shards"] += missing
    if pc.count_distinct(table.column("uid")).as_py() != table.num_rows:
        raise CurateError("shard: a uid appears in more than one source sample; uids must be unique in the sources")
    if refused:
        log.warning("shard: refused %s", dict(refused))
    return Candidates(table.select([*COLUMNS, *dynamic]), dynamic, dict(sorted(refused.items())))
