"""The shard stage's candidates, read shard by shard in the task that reads each source shard's parts (no
table is read whole anywhere): the selection, the safety gate, the captions and scores, and where each
sample's files lie in its source tar (`catalog`).

- Selection: our own `select/decisions/NNNNN.parquet` (kept rows, their `weight`) for download shard NNNNN;
  or a DataComp `u8,u8` uid array (`--uids`, or `select/uids.npy` of a run written before decisions were
  split by shard), looked up by binary search (`uidset`); a uid listed k times weighs k.
- Bytes: our `download/shards/NNNNN.tar` (+ `.idx`), or img2dataset/DataComp shards (`NNNNN.tar` beside
  `NNNNN.parquet` with key, caption, status and optionally uid) with `--source-shards`.
- Safety gate, our own run: dedup's decisions part of the same shard; a selected uid whose decision is
  `safety_hash_list` is refused as such, one that dedup rejected for another reason or never decided on as
  `not_dedup_survivor`. With external shards the run's dedup decisions (if any) are joined by uid on the
  engine (`program.gate`).

A task returns one row per candidate (CANDIDATE columns plus the score columns) and one row per refused
uid (`uid`, `refuse`; the rest null), so the refusals are counted by the engine like everything else.
With `with_data` it also reads the selected samples' bytes, in large sequential ranges of the source tar
(object stores: no request per sample), for the engine's shuffle to carry to the output shards.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import CurateError
from curate.io import dataset, fs, sums
from curate.shard import uidset
from curate.shard.catalog import catalog

log = logging.getLogger(__name__)

SAFETY_REASON = "safety_hash_list"
NOT_SURVIVOR = "not_dedup_survivor"
NOT_IN_SOURCES = "not_in_source_shards"
FIXED_SCORES = ("clip_similarity", "language", "language_score")
GAP = 1 << 20  # byte ranges closer than this in a source tar are read as one
CANDIDATE = pa.schema([
    ("uid", pa.string()), ("weight", pa.float64()), ("refuse", pa.string()), ("caption", pa.string()),
    ("clip_similarity", pa.float32()), ("language", pa.string()), ("language_score", pa.float32()),
    ("source_shard", pa.string()), ("source_key", pa.string()),
    ("exts", pa.list_(pa.string())), ("offsets", pa.list_(pa.int64())), ("sizes", pa.list_(pa.int64())),
    ("lo", pa.int64()), ("hi", pa.int64()), ("nbytes", pa.int64()), ("data", pa.binary()),
    ("crcs", pa.list_(pa.int64())),  # per file: CRC32C from the source tar's sidecar (-1: unknown), checked on copy
])


def schema(dynamic: tuple[str, ...]) -> pa.Schema:
    """CANDIDATE plus the run's float32 score columns (clip_<alias>, probes)."""
    return pa.schema([*CANDIDATE, *(pa.field(c, pa.float32()) for c in dynamic)])


@dataclass(frozen=True)
class Reader:
    """Runs in a task: the candidates of one source shard. `uids` is a u8,u8 array path (selection by
    binary search) or None (select/decisions parts); `legacy_weights` a select/decisions.parquet of the old
    single-file layout."""

    source_dir: str
    dynamic: tuple[str, ...] = ()
    uids: str | None = None
    external: bool = False
    legacy_weights: str | None = None
    with_data: bool = False

    def __call__(self, item: dict) -> pa.Table:
        rows = self._external(item) if self.external else self._own(item)
        return rows.select(schema(self.dynamic).names)

    # our own run -----------------------------------------------------------------------------------------
    def _own(self, item: dict) -> pa.Table:
        tar = item["name"] + ".tar"
        samples = dataset.read_part(item["samples"], ["uid", "caption", "status", "shard", "key"], only_present=True)
        samples = samples.filter(pc.and_(pc.equal(samples.column("status"), "success"),
                                         pc.is_valid(samples.column("shard"))))
        if self.uids is not None:
            sel = self._by_array(samples.column("uid"))
            if self.legacy_weights:
                sel = _times_legacy_weight(sel, self.legacy_weights)
        else:
            sel = _kept(item.get("select"))
        known = pc.is_in(sel.column("uid"), value_set=samples.column("uid"))
        if not pc.all(known).as_py() and sel.num_rows:
            missing = sel.num_rows - pc.sum(known).as_py()
            raise CurateError(f"shard: {missing} selected uids of download shard {tar} are not in its download samples")
        ok, refused = _gate(sel, item.get("dedup"))
        rows = ok.join(samples.select(["uid", "caption", "key"]), "uid", join_type="inner")
        scores = _scores(item.get("scores"), self.dynamic)
        rows = rows.join(scores, "uid", join_type="left outer")
        rows = rows.rename_columns(["source_key" if c == "key" else c for c in rows.column_names])
        return self._located(rows, tar, refused)

    def _by_array(self, uids: pa.ChunkedArray) -> pa.Table:
        mult = uidset.multiplicity(self.uids, uids)
        keep = mult > 0
        return pa.table({"uid": uids.filter(pa.array(keep)), "weight": pa.array(mult[keep].astype(np.float64))})

    # img2dataset / DataComp shards -----------------------------------------------------------------------
    def _external(self, item: dict) -> pa.Table:
        path = item["parquet"]
        t = dataset.read_part(path, ["key", "caption", "status", "uid"], only_present=True)
        if "key" not in t.column_names:
            raise CurateError(f"shard: {path} has no 'key' column (not an img2dataset shard parquet)")
        if "status" in t.column_names:
            t = t.filter(pc.equal(t.column("status"), "success"))
        key = t.column("key").cast(pa.string())
        uid = t.column("uid").cast(pa.string()) if "uid" in t.column_names else key
        caption = t.column("caption").cast(pa.string()) if "caption" in t.column_names else pa.nulls(t.num_rows,
                                                                                                     pa.string())
        mult = uidset.multiplicity(self.uids, uid)
        keep = pa.array(mult > 0)
        rows = pa.table({"uid": uid.filter(keep), "weight": pa.array(mult[mult > 0].astype(np.float64)),
                         "caption": caption.filter(keep), "source_key": key.filter(keep)})
        return self._located(rows, item["name"] + ".tar", _empty_refused())

    # both ------------------------------------------------------------------------------------------------
    def _located(self, rows: pa.Table, tar: str, refused: pa.Table) -> pa.Table:
        """Candidate rows with their files' places in `tar` (and bytes), then the refused rows."""
        out = schema(self.dynamic)
        path = fs.join(self.source_dir, tar)
        if rows.num_rows:
            cat = catalog(path)
            at = pc.index_in(rows.column("source_key"), value_set=cat.column("key").combine_chunks())
            if at.null_count:
                i = pc.index(pc.is_null(at), True).as_py()
                raise CurateError(f"shard: sample {rows.column('uid')[i].as_py()} "
                                  f"(key {rows.column('source_key')[i].as_py()}) is not in {path}")
            found = cat.take(at)
            for name in ("exts", "offsets", "sizes", "lo", "hi", "nbytes", "crcs"):
                rows = rows.append_column(name, found.column(name))
            rows = rows.sort_by([("uid", "ascending")])
        n = rows.num_rows
        cols = {}
        for field in out:
            if field.name in rows.column_names:
                cols[field.name] = rows.column(field.name).cast(field.type)
            elif field.name == "source_shard":
                cols[field.name] = pa.array([tar] * n, pa.string())
            else:
                cols[field.name] = pa.nulls(n, field.type)
        if self.with_data and n:
            cols["data"] = read_bytes(path, rows)
        ok = pa.table(cols, schema=out)
        return pa.concat_tables([ok, _as_refused(refused, out)])


def _kept(path: str | None) -> pa.Table:
    """Kept uids and their weights from one select/decisions part (none when the part is absent)."""
    if not path or not fs.exists(path):
        return pa.table({"uid": pa.array([], pa.string()), "weight": pa.array([], pa.float64())})
    t = dataset.read_part(path, ["uid", "kept", "weight"], only_present=True)
    t = t.filter(pc.fill_null(t.column("kept"), False))
    weight = t.column("weight").cast(pa.float64()) if "weight" in t.column_names else pa.nulls(t.num_rows,
                                                                                              pa.float64())
    return pa.table({"uid": t.column("uid"), "weight": pc.fill_null(weight, 1.0)})


def _times_legacy_weight(sel: pa.Table, path: str) -> pa.Table:
    """The array's multiplicity times the weight an old single-file select/decisions.parquet gives."""
    if "weight" not in fs.read_schema(path).names:
        return sel
    t = fs.read_table(path, columns=["uid", "weight"])
    at = pc.index_in(sel.column("uid"), value_set=t.column("uid").combine_chunks())
    weight = pc.fill_null(pc.take(t.column("weight").combine_chunks(), at).cast(pa.float64()), 1.0)
    return sel.set_column(1, "weight", pc.multiply(sel.column("weight"), weight))


def _gate(sel: pa.Table, dedup_path: str | None) -> tuple[pa.Table, pa.Table]:
    """(selected rows dedup kept, refused rows: uid and reason) by the shard's dedup decisions part."""
    if dedup_path and fs.exists(dedup_path):
        dec = dataset.read_part(dedup_path, ["uid", "reason"])
        decided = pc.is_in(sel.column("uid"), value_set=dec.column("uid"))
        rejected = dec.filter(pc.is_valid(dec.column("reason")))
        at = pc.index_in(sel.column("uid"), value_set=rejected.column("uid").combine_chunks())
        reason = pc.take(rejected.column("reason").combine_chunks(), at)
    else:
        decided = pa.array(np.zeros(sel.num_rows, bool))
        reason = pa.nulls(sel.num_rows, pa.string())
    is_ok = pc.and_(decided, pc.is_null(reason))
    refuse = pc.if_else(pc.equal(reason, SAFETY_REASON), SAFETY_REASON, NOT_SURVIVOR)
    refused = pa.table({"uid": sel.column("uid"), "refuse": refuse}).filter(pc.invert(is_ok))
    return sel.filter(is_ok), refused


def _scores(path: str | None, dynamic: tuple[str, ...]) -> pa.Table:
    cols = ["uid", *FIXED_SCORES, *dynamic]
    if path and fs.exists(path):
        t = dataset.read_part(path, cols, only_present=True)
    else:
        t = pa.table({"uid": pa.array([], pa.string())})
    for c in cols:
        if c not in t.column_names:
            t = t.append_column(c, pa.nulls(t.num_rows, pa.string() if c == "language" else pa.float32()))
    return t.select(cols)


def _empty_refused() -> pa.Table:
    return pa.table({"uid": pa.array([], pa.string()), "refuse": pa.array([], pa.string())})


def _as_refused(refused: pa.Table, out: pa.Schema) -> pa.Table:
    n = refused.num_rows
    return pa.table({f.name: (refused.column(f.name).cast(f.type) if f.name in ("uid", "refuse")
                              else pa.nulls(n, f.type)) for f in out}, schema=out)


def read_bytes(path: str, rows: pa.Table) -> pa.Array:
    """Each row's files, concatenated in its `exts` order, read from the tar at `path` in ranges merged
    across gaps below GAP bytes (one request per range, in file order)."""
    # in the task reading this tar: one source tar's samples, at most the download's shard_size (10,000 by
    # default, DownloadConfig), never the pool
    offsets = rows.column("offsets").to_pylist()
    sizes = rows.column("sizes").to_pylist()
    crcs = rows.column("crcs").to_pylist() if "crcs" in rows.column_names else [None] * len(offsets)
    spans = sorted({(o, o + s) for offs, szs in zip(offsets, sizes, strict=True)
                    for o, s in zip(offs, szs, strict=True)})
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a - merged[-1][1] <= GAP:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    sfs, p = fs.url_to_fs(path)
    starts = np.array([m[0] for m in merged], np.int64)
    chunks = sfs.cat_ranges([p] * len(merged), [m[0] for m in merged], [m[1] for m in merged])
    out = []
    for offs, szs, listed in zip(offsets, sizes, crcs, strict=True):
        parts = []
        for o, s in zip(offs, szs, strict=True):
            j = int(np.searchsorted(starts, o, "right")) - 1
            parts.append(chunks[j][o - merged[j][0]:o - merged[j][0] + s])
        if sum(len(x) for x in parts) != sum(szs):
            raise CurateError(f"shard: {path} is cut short: a sample's files end past the end of the file")
        for part, o, want in zip(parts, offs, listed or [None] * len(offs), strict=True):
            sums.check_member(path, o, part, want)
        out.append(b"".join(parts))
    return pa.array(out, pa.binary())

