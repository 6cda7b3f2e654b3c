"""A synthetic run directory that is ready to score, laid out as download and dedup write it: per download
shard NNNNN a tar `download/shards/NNNNN.tar`, a samples part `download/samples/NNNNN.parquet` (sorted by
uid) and a decisions part `dedup/decisions/NNNNN.parquet`. Used by the score tests and benches; needs no
server, no Spark and no network.

Each sample is one of the demo's coloured shapes (curate/demo/shapes.py) with a matched caption, or, for
every `mismatch_every`-th sample, a caption of another scene; `corrupt` samples hold bytes that are not
an image, so scoring must give them status decode_error. Every `reject_every`-th sample is rejected by
dedup (duplicate_url), and the last `failed_shards` shards failed to download entirely (no images, no
decisions part), so scoring must skip both.
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
    reject_every: int = 0  # every k-th sample is a duplicate that dedup rejected (0: none)
    failed_shards: int = 0  # the last shards' downloads all failed: no images and no decisions part


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def make_run(run_dir: str, cfg: SyntheticRun = SyntheticRun()) -> pa.Table:
    """Write `run_dir`/download and `run_dir`/dedup (both complete); return the labels: uid, key, shard,
    matched (caption describes the image), corrupt and scored (reached scoring: downloaded and kept)."""
    rng = random.Random(cfg.seed)
    corrupt = set(rng.sample(range(cfg.n), cfg.corrupt)) if cfg.corrupt else set()
    labels = []
    per_shard = -(-cfg.n // cfg.shards)
    for s in range(cfg.shards):
        shard = f"{s:05d}.tar"
        failed = s >= cfg.shards - cfg.failed_shards
        buf, rows, decisions = io.BytesIO(), [], []
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
                rejected = bool(cfg.reject_every) and i % cfg.reject_every == cfg.reject_every - 1
                if not failed:
                    _add(tar, f"{key}.{'png' if png else 'jpg'}", data)
                    _add(tar, f"{key}.txt", caption.encode())
                    decisions.append({"uid": uid, "url_canonical": f"http://127.0.0.1/{i}.jpg",
                                      "sha256": hashlib.sha256(data).hexdigest(),
                                      "reason": "duplicate_url" if rejected else None, "duplicate_of": None})
                rows.append({"uid": uid, "url": f"http://127.0.0.1/{i}.jpg", "caption": caption,
                             "status": "error" if failed else "success",
                             "error": "HTTP Error 404: Not Found" if failed else None,
                             "sha256": None if failed else hashlib.sha256(data).hexdigest(), "width": w, "height": h,
                             "original_width": w, "original_height": h, "shard": shard, "key": key})
                labels.append({"uid": uid, "key": key, "shard": shard, "matched": matched,
                               "corrupt": i in corrupt, "scored": not (failed or rejected)})
        part = f"{s:05d}.parquet"
        fs.write_bytes(fs.join(run_dir, "download", "shards", shard), buf.getvalue())
        samples = pa.Table.from_pylist(rows, schema=schemas.load("samples")).sort_by("uid")
        fs.write_table(samples, fs.join(run_dir, "download", "samples", part), schema="samples")
        if decisions:
            table = pa.Table.from_pylist(decisions, schema=schemas.load("dedup")).sort_by("uid")
            fs.write_table(table, fs.join(run_dir, "dedup", "decisions", part), schema="dedup")
    failed_shards = {f"{s:05d}.tar" for s in range(cfg.shards - cfg.failed_shards, cfg.shards)}
    n_ok = sum(r["shard"] not in failed_shards for r in labels)
    StageDir(run_dir, "download").finish({"stage": "download", "rows_in": cfg.n, "kept": n_ok, "rejected": {}})
    kept = sum(r["scored"] for r in labels)
    StageDir(run_dir, "dedup").finish({"stage": "dedup", "rows_in": n_ok, "kept": kept,
                                       "rejected": {"duplicate_url": n_ok - kept} if n_ok > kept else {}})
    return pa.Table.from_pylist(labels)
