"""A synthetic run directory that is ready to score: JPEG shards as the download stage writes them, their
samples table and dedup decisions. Used by the score tests and `bench/bench_score.py`; needs no server,
no Spark and no network.

Each sample is one of the demo's coloured shapes (curate/demo/shapes.py) with a matched caption, or, for
every `mismatch_every`-th sample, a caption of another scene; `corrupt` samples hold bytes that are not
an image, so scoring must give them status decode_error.
"""

from __future__ import annotations

import hashlib
import io
import random
import tarfile
from dataclasses import dataclass

import pyarrow as pa

from curate import schemas
from curate.demo.shapes import english_caption, other_scene, random_scene, render
from curate.io import fs
from curate.io.stagedir import StageDir


@dataclass(frozen=True)
class SyntheticRun:
    n: int = 60
    shards: int = 3
    size: tuple[int, int] = (64, 256)  # smallest and largest side, in pixels
    mismatch_every: int = 4  # every k-th caption describes another scene (0: none)
    corrupt: int = 2  # samples whose bytes are not an image
    png_every: int = 5  # every k-th image is a PNG (the rest JPEG) (0: none)
    seed: int = 0


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def make_run(run_dir: str, cfg: SyntheticRun = SyntheticRun()) -> pa.Table:
    """Write `run_dir`/download and `run_dir`/dedup (both complete); return the labels: uid, key, shard,
    matched (caption describes the image) and corrupt."""
    rng = random.Random(cfg.seed)
    corrupt = set(rng.sample(range(cfg.n), cfg.corrupt)) if cfg.corrupt else set()
    rows, labels = [], []
    per_shard = -(-cfg.n // cfg.shards)
    for s in range(cfg.shards):
        shard = f"{s:05d}.tar"
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for i in range(s * per_shard, min(cfg.n, (s + 1) * per_shard)):
                scene = random_scene(rng)
                w, h = rng.randint(*cfg.size), rng.randint(*cfg.size)
                png = bool(cfg.png_every) and i % cfg.png_every == cfg.png_every - 1
                img = io.BytesIO()
                render(scene, w, h, rng).save(img, format="PNG" if png else "JPEG", quality=90)
                data = b"this is not an image" if i in corrupt else img.getvalue()
                matched = not (cfg.mismatch_every and i % cfg.mismatch_every == cfg.mismatch_every - 1)
                caption = english_caption(scene if matched else other_scene(scene, rng), rng)
                key = f"{s:05d}{i:06d}"
                uid = hashlib.md5(f"{cfg.seed}/{i}".encode()).hexdigest()
                _add(tar, f"{key}.{'png' if png else 'jpg'}", data)
                _add(tar, f"{key}.txt", caption.encode())
                rows.append({"uid": uid, "url": f"http://127.0.0.1/{i}.jpg", "caption": caption, "status": "success",
                             "error": None, "sha256": hashlib.sha256(data).hexdigest(), "width": w, "height": h,
                             "original_width": w, "original_height": h, "shard": shard, "key": key})
                labels.append({"uid": uid, "key": key, "shard": shard, "matched": matched,
                               "corrupt": i in corrupt})
        fs.write_bytes(fs.join(run_dir, "download", "shards", shard), buf.getvalue())
    samples = pa.Table.from_pylist(rows, schema=schemas.load("samples"))
    fs.write_table(samples, fs.join(run_dir, "download", "samples", "00000.parquet"), schema="samples")
    StageDir(run_dir, "download").finish({"stage": "download", "rows_in": cfg.n, "kept": cfg.n, "rejected": {}})
    decisions = pa.Table.from_pylist([{"uid": r["uid"], "url_canonical": r["url"], "sha256": r["sha256"],
                                       "reason": None, "duplicate_of": None} for r in rows],
                                     schema=schemas.load("dedup"))
    fs.write_table(decisions, fs.join(run_dir, "dedup", "decisions", "00000.parquet"), schema="dedup")
    StageDir(run_dir, "dedup").finish({"stage": "dedup", "rows_in": cfg.n, "kept": cfg.n, "rejected": {}})
    return pa.Table.from_pylist(labels)
