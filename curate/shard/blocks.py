"""What one task does with one block of the planned stream, after the engine's shuffle brought it every row
that may fall in it: place the rows (their exact stream positions), then write the block's tars, its
manifest part and stats (`BlockWriter`), count its tars (`PieceCounter`), or write its part of the replay
list of a streamed folder (`PlaylistWriter`).

A block is B = samples_per_shard consecutive stream positions. It is written as one tar, or, when its
samples' files add up to more than `max_shard_bytes`, as several: cut greedily in stream order inside the
block (a tar never spans two blocks). Tars are numbered in stream order; `TarNumbers` says where a block's
first tar falls from the blocks that were cut (known before any tar is written).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate import schemas
from curate.errors import CurateError
from curate.io import dataset, fs
from curate.shard.reshard import ShardJob, split, write_shard

log = logging.getLogger(__name__)

DIGITS = 5  # output shard ids: 00000.tar
KEY_DIGITS = 6  # position in the shard; a key is the shard id and the position: 00000000123
MANIFEST_VERSION = 2
WRITTEN = pa.schema([("block", pa.int64()), ("tar", pa.string()), ("samples", pa.int64()), ("bytes", pa.int64()),
                     ("tar_bytes", pa.int64()), ("unique", pa.int64())])
PIECES = pa.schema([("block", pa.int64()), ("pieces", pa.int64())])
LOCATED = pa.schema([("uid", pa.string()), ("shard", pa.string()), ("key", pa.string()),
                     ("repetition", pa.int64())])
PLAYLIST = pa.schema([("uid", pa.string()), ("shard", pa.string()), ("key", pa.string()), ("copy", pa.int32())])
MANIFEST_FIXED = ("caption", "clip_similarity", "language", "language_score", "source_shard", "source_key", "weight")


@dataclass(frozen=True)
class TarNumbers:
    """Tar ids: block k's first tar is k plus the extra tars of the cut blocks before it."""

    blocks: int
    cut: tuple[int, ...] = ()  # blocks written as more than one tar, ascending
    pieces: tuple[int, ...] = ()  # their number of tars

    def first(self, block: int) -> int:
        before = int(np.searchsorted(np.array(self.cut, np.int64), block))
        return block + int(sum(self.pieces[:before])) - before

    @property
    def total(self) -> int:
        return self.blocks + sum(self.pieces) - len(self.cut)

    @property
    def digits(self) -> int:
        return max(DIGITS, len(str(max(0, self.total - 1))))

    def name(self, tar_id: int) -> str:
        return f"{tar_id:0{self.digits}d}.tar"


def place(rows: pa.Table, block: int, size: int) -> pa.Table:
    """The rows of `block` in stream order, with their `position`: the rows of every bucket touching the block
    arrive (a bucket's rows are the copies of one pass whose sort keys share their top bits; `start` is the
    bucket's first position), so a row's position is `start` plus its rank by (sort key, uid) in its bucket."""
    uid = np.array(rows.column("uid").to_pylist(), dtype=str)
    digest = np.array(rows.column("digest").to_pylist(), dtype="S32")
    pas = rows.column("pass").to_numpy()
    order = np.lexsort((uid, digest, pas))
    rows, uid, pas = rows.take(pa.array(order)), uid[order], pas[order]
    dup = np.flatnonzero((uid[1:] == uid[:-1]) & (pas[1:] == pas[:-1]))
    if len(dup):
        raise CurateError(f"shard: uid {uid[dup[0]]} appears in more than one source sample; uids must be unique "
                          "in the sources")
    start = rows.column("start").to_numpy()
    first = np.flatnonzero(np.concatenate([[True], start[1:] != start[:-1]])) if len(start) else np.zeros(0, int)
    run_start = np.repeat(first, np.diff(np.append(first, len(start))))
    pos = start + (np.arange(len(start)) - run_start)
    keep = (pos >= block * size) & (pos < (block + 1) * size)
    return rows.filter(pa.array(keep)).append_column("position", pa.array(pos[keep], pa.int64()))


def pieces(nbytes: np.ndarray, size: int, cap: int) -> list[tuple[int, int]]:
    return split(nbytes.tolist(), size, cap) if len(nbytes) else []


@dataclass(frozen=True)
class PieceCounter:
    """How many tars a block needs under the byte cap (run only for blocks that may exceed it)."""

    size: int
    cap: int

    def __call__(self, rows: pa.Table) -> pa.Table:
        block = int(rows.column("block")[0].as_py())
        placed = place(rows, block, self.size)
        n = len(pieces(placed.column("nbytes").to_numpy(), self.size, self.cap))
        return pa.table({"block": [block], "pieces": [n]}, schema=PIECES)


@dataclass(frozen=True)
class BlockWriter:
    """Writes block k: its tars (`NNNNN.tar` and `NNNNN_stats.json`), `manifest/part-k.parquet` (the
    block's rows in stream order, manifest.v2) and, for a streamed folder, `_work/located/part-k.parquet`
    (where each sample was written, for the replay list). Returns one WRITTEN row per tar."""

    out: str
    size: int
    cap: int
    numbers: TarNumbers
    source_dir: str
    streamed: bool = False
    write_tars: bool = True
    threads: int = 1
    dynamic: tuple[str, ...] = field(default=())

    def __call__(self, rows: pa.Table) -> pa.Table:
        block = int(rows.column("block")[0].as_py())
        rows = place(rows, block, self.size)
        cuts = pieces(rows.column("nbytes").to_numpy(), self.size, self.cap)
        first = self.numbers.first(block)
        names, keys, stats = [], [], []
        for j, (a, b) in enumerate(cuts):
            tar_id = first + j
            name = self.numbers.name(tar_id)
            piece_keys = [f"{tar_id:0{DIGITS}d}{i:0{KEY_DIGITS}d}" for i in range(b - a)]
            names += [name] * (b - a)
            keys += piece_keys
            stats.append(self._tar(rows.slice(a, b - a), name, piece_keys, block))
        self._manifest(rows, names, keys, block)
        if self.streamed:
            located = pa.table({"uid": rows.column("uid"), "shard": pa.array(names, pa.string()),
                                "key": pa.array(keys, pa.string()), "repetition": rows.column("repetition")},
                               schema=LOCATED)
            dataset.write_part(located, fs.join(self.out, "_work", "located", dataset.part_name(block)))
        return pa.Table.from_pylist(stats, schema=WRITTEN)

    def _tar(self, rows: pa.Table, name: str, keys: list[str], block: int) -> dict:
        nbytes = int(pc.sum(rows.column("nbytes")).as_py() or 0)
        unique = pc.count_distinct(rows.column("uid")).as_py()
        if not self.write_tars:
            return {"block": block, "tar": name, "samples": rows.num_rows, "bytes": nbytes, "tar_bytes": 0,
                    "unique": unique}
        job = shard_job(rows, fs.join(self.out, name), fs.join(self.out, name[:-len(".tar")] + "_stats.json"),
                        name, keys, self.source_dir, self.threads)
        done = write_shard(job)
        return {"block": block, "tar": name, "samples": done["samples"], "bytes": done["bytes"],
                "tar_bytes": done["tar_bytes"], "unique": unique}

    def _manifest(self, rows: pa.Table, names: list[str], keys: list[str], block: int) -> None:
        copy = pa.array(np.zeros(rows.num_rows, np.int32)) if self.streamed else rows.column("pass")
        cols = {"uid": rows.column("uid"), "shard": pa.array(names, pa.string()), "key": pa.array(keys, pa.string()),
                **{c: rows.column(c) for c in MANIFEST_FIXED}, "repetition": rows.column("repetition"),
                "copy": copy, **{c: rows.column(c) for c in self.dynamic}}
        table = schemas.conform(pa.table(cols), "manifest", MANIFEST_VERSION)
        dataset.write_part(table, fs.join(self.out, "manifest", dataset.part_name(block)))


def shard_job(rows: pa.Table, tar: str, stats: str, name: str, keys: list[str], source_dir: str,
              threads: int) -> ShardJob:
    """The tar of `rows` (in order) as a ShardJob: their files' places in the source tars (and bytes)."""
    used, src = np.unique(np.array(rows.column("source_shard").to_pylist(), dtype=str), return_inverse=True)
    exts = rows.column("exts").combine_chunks()
    count = pc.list_value_length(exts).to_numpy(zero_copy_only=False).astype(np.int32)
    info = (("unique_samples", pc.count_distinct(rows.column("uid")).as_py()),
            ("first_pass", int(rows.column("pass")[0].as_py()) if rows.num_rows else 0),
            ("last_pass", int(rows.column("pass")[rows.num_rows - 1].as_py()) if rows.num_rows else 0))
    data = rows.column("data")
    blobs = tuple(data.to_pylist()) if data.null_count == 0 and rows.num_rows else None
    return ShardJob(tar, stats, name, tuple(keys), tuple(fs.join(source_dir, s) for s in used.tolist()),
                    src.astype(np.int32), count, tuple(exts.flatten().to_pylist()),
                    rows.column("offsets").combine_chunks().flatten().to_numpy().astype(np.int64),
                    rows.column("sizes").combine_chunks().flatten().to_numpy().astype(np.int64),
                    rows.column("lo").to_numpy().astype(np.int64), rows.column("hi").to_numpy().astype(np.int64),
                    info, threads, blobs, _crcs(rows))


def _crcs(rows: pa.Table) -> np.ndarray | None:
    """Per file the CRC32C its source tar's sidecar lists (-1: not listed); None when none is listed."""
    if "crcs" not in rows.column_names or rows.column("crcs").null_count:
        return None
    flat = pc.fill_null(rows.column("crcs").combine_chunks().flatten(), -1).to_numpy(zero_copy_only=False)
    return flat.astype(np.int64) if (flat >= 0).any() else None


@dataclass(frozen=True)
class PlaylistWriter:
    """Writes `stream/part-k.parquet` of a streamed folder: positions [kB, (k+1)B) of the planned stream as
    (uid, shard, key, copy): the loader's replay list. Returns one WRITTEN row (its rows as samples)."""

    out: str
    size: int

    def __call__(self, rows: pa.Table) -> pa.Table:
        block = int(rows.column("block")[0].as_py())
        rows = place(rows, block, self.size)
        table = pa.table({"uid": rows.column("uid"), "shard": rows.column("shard"), "key": rows.column("key"),
                          "copy": rows.column("pass").cast(pa.int32())}, schema=PLAYLIST)
        dataset.write_part(table, fs.join(self.out, "stream", dataset.part_name(block)))
        return pa.Table.from_pylist([{"block": block, "tar": "", "samples": rows.num_rows, "bytes": 0,
                                      "tar_bytes": 0, "unique": 0}], schema=WRITTEN)
