"""A synthetic run directory whose download, dedup, score and select stages are finished, for the shard
stage's tests and benchmark: real JPEGs in sorted webdataset tars, tables that follow our schemas."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from PIL import Image

from curate import schemas
from curate.io import dataset, fs, sums, tarindex
from curate.io.stagedir import StageDir
from curate.io.tario import write_tar_file
from curate.select.run import uids_to_u8u8

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (40, 60, 220), "yellow": (230, 210, 40)}
SHAPES = ("square", "circle", "triangle")


@dataclass(frozen=True)
class SyntheticRun:
    n: int = 60  # samples downloaded
    per_shard: int = 25  # samples per download shard
    image_px: int = 32
    noise: bool = False  # random pixels: incompressible JPEGs of realistic size (for the benchmark)
    seed: int = 0
    selected_every: int = 1  # select every k-th sample
    weights: bool = False  # select writes a weight column (1, 2 or 3)
    safety_every: int = 0  # dedup marks every k-th sample safety_hash_list (0: none)


def uid_of(i: int) -> str:
    return f"{i * 2654435761 % (1 << 64):016x}{i:016x}"


def _jpeg(rng: np.random.Generator, cfg: SyntheticRun, colour: tuple[int, int, int]) -> bytes:
    if cfg.noise:
        pixels = rng.integers(0, 256, (cfg.image_px, cfg.image_px, 3), dtype=np.uint8)
    else:
        pixels = np.empty((cfg.image_px, cfg.image_px, 3), dtype=np.uint8)
        pixels[:] = colour
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def make_run(run_dir: str, cfg: SyntheticRun = SyntheticRun()) -> list[str]:
    """Write the finished stages into `run_dir`, every table one part per download shard as the stages
    write them; return every sample's uid (index order)."""
    rng = np.random.default_rng(cfg.seed)
    uids = [uid_of(i) for i in range(cfg.n)]
    safety = {u for i, u in enumerate(uids) if cfg.safety_every and i % cfg.safety_every == 0}
    score_schema = schemas.load("scores").append(pa.field("clip_probe", pa.float32()))  # a dynamic score column
    kept = [i for i in range(cfg.n) if i % cfg.selected_every == 0]
    weights = {i: float(1 + j % 3) for j, i in enumerate(kept)} if cfg.weights else {}
    for sid in range(0, cfg.n, cfg.per_shard):
        stem = f"{sid // cfg.per_shard:05d}"
        shard = f"{stem}.tar"
        rows, samples, scores = [], [], []
        for i in range(sid, min(sid + cfg.per_shard, cfg.n)):
            colour = list(COLOURS)[i % len(COLOURS)]
            caption = f"a {colour} {SHAPES[i % len(SHAPES)]} number {i}"
            key = f"{stem}{i - sid:04d}"
            rows.append((key, _jpeg(rng, cfg, COLOURS[colour]), caption, uids[i]))
            samples.append({"uid": uids[i], "url": f"http://127.0.0.1/{i}.jpg", "caption": caption, "status": "success",
                            "error": None, "sha256": f"{i:064x}", "width": cfg.image_px, "height": cfg.image_px,
                            "original_width": cfg.image_px, "original_height": cfg.image_px, "shard": shard,
                            "key": key})
            scores.append({"uid": uids[i], "shard": shard, "key": key, "status": "ok", "error": None,
                           "clip_similarity": float(i % 7) / 10, "language": "en", "language_score": 0.9,
                           "clip_probe": float(i) / cfg.n})
        tar = fs.join(run_dir, "download", "shards", shard)
        files = [f for key, img, caption, uid in rows
                 for f in ((f"{key}.jpg", img), (f"{key}.json", json.dumps({"uid": uid, "caption": caption}).encode()),
                           (f"{key}.txt", caption.encode()))]
        tarindex.write_index(tar, write_tar_file(tar, files))  # with its .idx, as the download writes it
        part = f"{stem}.parquet"
        fs.write_table(pa.Table.from_pylist(samples), fs.join(run_dir, "download", "samples", part), schema="samples")
        fs.write_table(pa.Table.from_pylist(scores, schema=score_schema), fs.join(run_dir, "score", "scores", part))
        shard_uids = [r["uid"] for r in samples]
        fs.write_table(pa.table({"uid": shard_uids, "url_canonical": [r["url"] for r in samples],
                                 "sha256": [r["sha256"] for r in samples],
                                 "reason": pa.array([("safety_hash_list" if u in safety else None) for u in shard_uids],
                                                    pa.string()),
                                 "duplicate_of": pa.nulls(len(samples), pa.string())}),
                       fs.join(run_dir, "dedup", "decisions", part))
        idx = range(sid, min(sid + cfg.per_shard, cfg.n))
        write_decisions(run_dir, stem, [uids[i] for i in idx], [i % cfg.selected_every == 0 for i in idx],
                        [weights.get(i, 1.0) for i in idx])
    write_uids(run_dir, [uids[i] for i in kept])
    for stage in ("download", "dedup", "score", "select"):
        StageDir(run_dir, stage).finish({"stage": stage, "synthetic": True})
    return uids


def write_decisions(run_dir: str, stem: str, uids: list[str], kept: list[bool], weights: list[float]) -> None:
    """select/decisions/NNNNN.parquet (decisions.v2) for download shard NNNNN: every scored sample of it."""
    reason = [None if k else "synthetic" for k in kept]
    table = pa.table({"uid": uids, "kept": kept, "reason": pa.array(reason, pa.string()),
                      "step": pa.array([None if k else "synthetic" for k in kept], pa.string()),
                      "weight": pa.array([w if k else 0.0 for w, k in zip(weights, kept, strict=True)], pa.float64())})
    dataset.write_part(table, fs.join(run_dir, "select", "decisions", f"{stem}.parquet"), "decisions", 2)


def write_uids(run_dir: str, kept: list[str]) -> None:
    """select/uids.npy: DataComp's sorted u8,u8 array of the kept uids."""
    sel = fs.join(run_dir, "select")
    fs.makedirs(sel)
    buf = io.BytesIO()
    np.save(buf, uids_to_u8u8(kept))
    sums.write_bytes(fs.join(sel, "uids.npy"), buf.getvalue())  # with its sidecar, as select writes it


def write_selection(run_dir: str, kept: list[str], weights: list[float] | None) -> None:
    """Replace the run's selection: `kept` uids (any order) with `weights` (default 1); the decisions of
    every download shard are rewritten."""
    weight = dict(zip(kept, weights or [1.0] * len(kept), strict=True))
    samples = fs.join(run_dir, "download", "samples")
    for name in sorted(dataset.list_parts(samples)):
        uids = dataset.read_part(fs.join(samples, name), ["uid"]).column("uid").to_pylist()
        write_decisions(run_dir, name[:-len(".parquet")], uids, [u in weight for u in uids],
                        [weight.get(u, 1.0) for u in uids])
    write_uids(run_dir, kept)
