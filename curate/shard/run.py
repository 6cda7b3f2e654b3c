"""The shard stage: write the selected samples into new webdataset shards, shuffled with a seed,
with globally unique keys, `sizes.json` (read by open_clip's trainer), `manifest.parquet`, and a
`_stats.json` per shard. Each sample's original files (image, caption, json) are carried over."""

from __future__ import annotations

import hashlib
import logging
import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from curate import schemas
from curate.errors import CurateError
from curate.io import fs
from curate.io.stagedir import StageDir
from curate.io.tario import DeterministicTarWriter, index, read_member
from curate.select.run import u8u8_to_uids

log = logging.getLogger(__name__)

NAME = "shard"
DIGITS = 5


@dataclass(frozen=True)
class ShardConfig:
    samples_per_shard: int = 10_000
    seed: int = 0


def _order(uids: list[str], seed: int) -> list[int]:
    """A seeded permutation that depends only on each uid and the seed (stable under resharding)."""
    keys = [hashlib.sha256(f"{seed}:{u}".encode()).digest() for u in uids]
    return sorted(range(len(uids)), key=keys.__getitem__)


def _selected(run_dir: str) -> pa.Table:
    """The selected samples joined with where their bytes are and what was measured of them."""
    sel = fs.join(run_dir, "select", "uids.npy")
    sfs, p = fs.url_to_fs(sel)
    with sfs.open(p, "rb") as fh:
        uids = u8u8_to_uids(np.load(fh))
    samples = fs.read_table(fs.join(run_dir, "download", "samples"), schema="samples")
    scores = fs.read_table(fs.join(run_dir, "score", "scores"), schema="scores")
    table = (pa.table({"uid": pa.array(uids, pa.string())})
             .join(samples.select(["uid", "caption", "shard", "key"]), "uid")
             .join(scores.select(["uid", "clip_similarity", "language", "language_score"]), "uid"))
    if table.num_rows != len(uids):
        raise CurateError(f"shard: {len(uids) - table.num_rows} selected uids are not in the download "
                          "or score outputs of this run")
    return table.sort_by([("uid", "ascending")])


def run_shard(run_dir: str, config: ShardConfig | None = None) -> dict:
    config = config or ShardConfig()
    sd, finished = StageDir.start(run_dir, NAME, requires="select")
    if finished is not None:
        return finished
    table = _selected(run_dir)
    rows = table.to_pylist()
    rows = [rows[i] for i in _order([r["uid"] for r in rows], config.seed)]
    n_out = max(1, math.ceil(len(rows) / config.samples_per_shard))
    src_dir = fs.join(run_dir, "download", "shards")
    indexes = {s: index(fs.join(src_dir, s)) for s in sorted({r["shard"] for r in rows})}
    manifest, sizes = [], {}
    for out_id in range(n_out):
        part = rows[out_id * config.samples_per_shard:(out_id + 1) * config.samples_per_shard]
        name = f"{out_id:0{DIGITS}d}.tar"
        nbytes = _write_shard(sd.file(name), part, out_id, src_dir, indexes)
        sizes[name] = len(part)
        fs.write_json(sd.file(f"{out_id:0{DIGITS}d}_stats.json"), {"shard": name, "samples": len(part),
                                                                   "bytes": nbytes})
        for i, r in enumerate(part):
            manifest.append({"uid": r["uid"], "shard": name, "key": _key(out_id, i), "caption": r["caption"],
                             "clip_similarity": r["clip_similarity"], "language": r["language"],
                             "language_score": r["language_score"], "source_shard": r["shard"],
                             "source_key": r["key"]})
    fs.write_json(sd.file("sizes.json"), sizes)
    fs.write_table(pa.Table.from_pylist(manifest, schema=schemas.load("manifest")),
                   sd.file("manifest.parquet"), schema="manifest")
    result = {"stage": NAME, "rows_in": len(rows), "kept": len(rows), "rejected": {}, "shards": n_out,
              "seed": config.seed}
    sd.finish(result)
    return result


def _key(out_id: int, i: int) -> str:
    """Globally unique: the output shard id and the position in it."""
    return f"{out_id:0{DIGITS}d}{i:06d}"


def _write_shard(path: str, part: list[dict], out_id: int, src_dir: str,
                 indexes: dict[str, dict[str, dict[str, tuple[int, int]]]]) -> int:
    by_src: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(part):
        by_src[r["shard"]].append(i)
    blobs: list[dict[str, bytes]] = [{} for _ in part]
    for src, positions in by_src.items():  # read each source tar once, in offset order
        sfs, p = fs.url_to_fs(fs.join(src_dir, src))
        with sfs.open(p, "rb") as fh:
            for i in positions:
                for ext, (off, size) in sorted(indexes[src][part[i]["key"]].items()):
                    blobs[i][ext] = read_member(fh, off, size)
    total = 0
    with fs.atomic_open(path, "wb") as fh:
        writer = DeterministicTarWriter(fh)
        for i, files in enumerate(blobs):
            for ext in sorted(files):
                writer.add(f"{_key(out_id, i)}.{ext}", files[ext])
                total += len(files[ext])
        writer.close()
    log.info("shard: wrote %s (%d samples)", path, len(part))
    return total

