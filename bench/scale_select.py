"""`bench scale`'s select and audit stages (see bench/scale.py for the harness).

`gen-scored` writes, with Spark's executors, a finished download, dedup and score of `rows` samples, one part
per download shard of SHARD rows: 3% duplicate images, 1% decode errors, a ViT-L/14-like score, a language,
and a precomputed nearest-centroid id (`cluster`, 100,000 clusters), so the DataComp-1B-style policy
(image-based ∩ CLIP top 30%, exact target size) reads a column instead of embeddings: k-means over the pool's
embeddings is a GPU job, and the row-local work after it is the same. `select` times `run_select` with that
policy, as `curate select RUN --policy FILE` runs it. `audit` also runs select (untimed), writes a manifest of
the kept rows as the shard stage would (untimed), and times `audit(run, engine)`. `shard` also runs select
(untimed), gives each download shard a tar index (`NNNNN.idx`, three files per sample) beside a sparse tar of
the size it names (only the headers the stage checks are written: no bytes are copied when planning), and
times `run_shard` with `write_tars=False`: the plan, the manifest and stream parts and sizes.json, as a
reshard writes them before any tar.
"""

from __future__ import annotations

import json
import time

import numpy as np

from bench.memory import PeakRss, self_peak_rss

SHARD = 10_000
CLUSTERS = 100_000
TARGET = 0.05  # of the rows: below what image ∩ top 30% keeps, so the target's cut decides


def policy_file(folder: str, rows: int, dfn: bool = False) -> str:
    from curate.io import fs

    ref = fs.join(folder, "reference_clusters.npy")
    with fs.atomic_open(ref, "wb") as fh:
        np.save(fh, np.random.default_rng(1).choice(CLUSTERS, CLUSTERS * 3 // 10, replace=False))
    policy = {"name": "datacomp-1b-style", "target_size": int(TARGET * rows),
              "steps": [{"step": "clip_score", "column": "clip_vit_l_14", "fraction": 0.3},
                        {"step": "datacomp_image", "cluster_column": "cluster", "reference_clusters": ref}]}
    if dfn:
        policy = {"name": "dfn-top-15", "target_size": int(0.15 * rows), "steps": [{"step": "dfn"}]}
    path = fs.join(folder, f"policy-{policy['name']}.yaml")
    fs.write_bytes(path, json.dumps(policy).encode())  # JSON is YAML
    return path


def gen_scored(eng, rows: int, run: str) -> None:
    from pyspark.sql import functions as F

    from curate import schemas
    from curate.io import fs
    from curate.io.dataset import PART_COL

    i = F.col("id")

    def h(salt: int):
        return F.pmod(F.xxhash64(i, F.lit(salt)), F.lit(1_000_000)) / F.lit(1_000_000.0)

    part = F.format_string("%05d", F.floor(i / SHARD))
    dup = h(1) < 0.03
    base = eng.session.range(rows).select(
        i, F.md5(i.cast("string")).alias("uid"), part.alias(PART_COL),
        F.concat(F.lit("http://h"), F.pmod(i, F.lit(5000)).cast("string"), F.lit(".org/"), i.cast("string"),
                 F.lit(".jpg")).alias("url"),
        F.concat(F.lit("a photo of thing "), F.pmod(F.xxhash64(i, F.lit(2)), F.lit(9999)).cast("string"))
        .alias("caption"),
        F.sha2(F.when(dup, F.pmod(F.xxhash64(i, F.lit(3)), F.lit(rows))).otherwise(i).cast("string"), 256)
        .alias("sha256"),
        F.format_string("%05d.tar", F.floor(i / SHARD)).alias("shard"),
        F.format_string("%05d%05d", F.floor(i / SHARD), F.pmod(i, F.lit(SHARD))).alias("key"),
        (F.lit(64) + F.pmod(F.xxhash64(i, F.lit(4)), F.lit(2000))).cast("int").alias("original_width"),
        (F.lit(64) + F.pmod(F.xxhash64(i, F.lit(5)), F.lit(2000))).cast("int").alias("original_height"),
        dup.alias("dup"), (h(6) < 0.01).alias("broken"),
        (F.lit(0.25) + (h(7) - F.lit(0.5)) * F.lit(0.3)).cast("float").alias("clip_vit_l_14"),
        h(11).cast("float").alias("clip_dfn"),
        F.when(h(8) < 0.45, F.lit("en")).otherwise(F.lit("xx")).alias("language"),
        h(9).cast("float").alias("language_score"),
        F.pmod(F.xxhash64(i, F.lit(10)), F.lit(CLUSTERS)).cast("int").alias("cluster"))
    tasks = max(2, rows // 500_000)
    urls = base.select("uid", "url", "caption", PART_COL)
    for name, typ in (("input_width", "int"), ("input_height", "int"), ("input_sha256", "string"),
                      ("similarity", "float"), ("source", "string")):
        urls = urls.withColumn(name, F.lit(None).cast(typ))
    eng.write_dataset(urls, fs.join(run, "download", "urls"), schema="urls", version=2, sort_by=["uid"], tasks=tasks)
    cols = [F.col(c) for c in ("uid", "url", "caption", "sha256", "shard", "key", "original_width", "original_height")]
    samples = base.select(*cols, F.lit("success").alias("status"), PART_COL)
    for f in schemas.load("samples", 3):
        if f.name not in samples.columns:
            samples = samples.withColumn(f.name, F.lit(None).cast({"int32": "int", "float32": "float"}.get(
                str(f.type), "string")))
    eng.write_dataset(samples, fs.join(run, "download", "samples"), schema="samples", version=3, sort_by=["uid"],
                      tasks=tasks)
    decisions = base.select("uid", F.col("url").alias("url_canonical"), "sha256",
                            F.when(F.col("dup"), F.lit("duplicate_image")).alias("reason"),
                            F.when(F.col("dup"), F.md5(F.lit("survivor"))).alias("duplicate_of"), PART_COL)
    eng.write_dataset(decisions, fs.join(run, "dedup", "decisions"), schema="dedup", sort_by=["uid"], tasks=tasks)
    scores = base.where(~F.col("dup")).select(
        "uid", "shard", "key", F.when(F.col("broken"), F.lit("decode_error")).otherwise(F.lit("ok")).alias("status"),
        F.lit(None).cast("string").alias("error"), F.col("clip_vit_l_14").alias("clip_similarity"), "language",
        "language_score", "clip_vit_l_14", "clip_dfn", "cluster", PART_COL)
    eng.write_dataset(scores, fs.join(run, "score", "scores"), sort_by=["uid"], tasks=tasks)
    for stage in ("download", "dedup", "score"):
        fs.write_bytes(fs.join(run, stage, "_SUCCESS"), b"")


def gen_manifest(eng, run: str, folder: str, rows: int) -> None:
    """select/ for real, then shard/: a manifest part per task of the kept rows, as the shard stage writes."""
    import pyarrow as pa
    from pyspark.sql import functions as F

    from curate.io import fs
    from curate.select.run import SelectConfig, run_select

    run_select(run, SelectConfig(policy=policy_file(folder, rows)), eng)
    schema = pa.schema([("uid", pa.string()), ("kept", pa.bool_())])
    kept = eng.read_dataset(fs.join(run, "select", "decisions"), schema)
    manifest = kept.where("kept").select(
        "uid", F.format_string("%05d.tar", F.pmod(F.xxhash64("uid"), F.lit(1000))).alias("shard"),
        F.substring("uid", 1, 11).alias("key"), F.lit(None).cast("string").alias("caption"),
        F.lit(None).cast("float").alias("clip_similarity"), F.lit(None).cast("string").alias("language"),
        F.lit(None).cast("float").alias("language_score"), F.lit("00000.tar").alias("source_shard"),
        F.lit("k").alias("source_key"), F.lit(1.0).alias("weight"), F.lit(1).cast("long").alias("repetition"),
        F.lit(0).cast("int").alias("copy"))
    eng.write_dataset(manifest, fs.join(run, "shard", "manifest"), schema="manifest", version=2, partitions=16,
                      key="uid", sort_by=["uid"])
    fs.write_json(fs.join(run, "shard", "_stats.json"), {"stage": "shard", "planned_zero": 0})
    fs.write_bytes(fs.join(run, "shard", "_SUCCESS"), b"")


def _sources_task(item: tuple[str, int]) -> dict:
    """Download shard `item[1]`'s index and sparse tar: sample j's jpg, json and txt members (100, 60 and 40
    bytes) at 512-byte blocks, as a tar lays them out; the headers of the first, middle and last samples'
    first file are written (the ones the stage compares with the index)."""
    import tarfile

    from curate.io import fs, tarindex

    folder, k = item
    keys = [f"{k:05d}{j:05d}" for j in range(SHARD)]
    files = (("jpg", 100), ("json", 60), ("txt", 40))
    lines = []
    for j, key in enumerate(keys):
        base = j * 512 * 2 * len(files)
        lines.append(" ".join(f"{ext} {base + m * 1024 + 512} {size} {key}.{ext}"
                              for m, (ext, size) in enumerate(files)))
    tar = fs.join(folder, f"{k:05d}.tar")
    fs.write_bytes(tarindex.index_path(tar), (f"{tarindex.VERSION} {SHARD}\n" + "\n".join(lines) + "\n").encode())
    with open(tar, "wb") as fh:
        fh.truncate(SHARD * 512 * 2 * len(files) + 1024)
        for j in sorted({0, SHARD // 2, SHARD - 1}):
            info = tarfile.TarInfo(f"{keys[j]}.jpg")
            info.size = 100
            fh.seek(j * 512 * 2 * len(files))
            fh.write(info.tobuf(format=tarfile.USTAR_FORMAT))
    return {"shards": 1}


def gen_sources(eng, rows: int, run: str, folder: str) -> None:
    """select/ for real (untimed), then a tar index and a sparse tar per download shard (see _sources_task)."""
    from curate.io import fs
    from curate.select.run import SelectConfig, run_select

    run_select(run, SelectConfig(policy=policy_file(folder, rows)), eng)
    shards = fs.join(run, "download", "shards")
    fs.makedirs(shards)
    eng.for_each(_sources_task, [(shards, k) for k in range(-(-rows // SHARD))], per_task=20)


def measure(stage: str, rows: int, folder: str, engine) -> dict:
    from curate.io import fs

    run = fs.join(folder, "run")
    with PeakRss() as tree, engine as eng:
        started = time.perf_counter()
        if stage == "shard":
            from curate.shard.run import ShardConfig, run_shard

            stats = run_shard(run, ShardConfig(write_tars=False), eng)
            detail = {"kept": stats["kept"], "rows_out": stats["rows_in"], "shards": stats["shards"]}
        elif stage == "select":
            from curate.select.run import SelectConfig, run_select

            stats = run_select(run, SelectConfig(policy=policy_file(folder, rows)), eng)
            detail = {"kept": stats["kept"], "rows_out": stats["rows_in"]}
        else:
            from curate.audit import audit

            result = audit(run, eng)
            detail = {"kept": result.kept, "rows_out": result.input_rows, "ok": result.ok}
        seconds = time.perf_counter() - started
    return {"stage": stage, "rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds, 1),
            "driver_rss_bytes": self_peak_rss(), "tree_rss_bytes": tree.peak, **detail}
