"""The shard stage: write the selected samples into new webdataset shards in a seeded global order, with
globally unique keys, `sizes.json` (read by open_clip's trainer), `manifest.parquet`, `plan.json` and a
`_stats.json` per shard. Each sample's original files (image, caption, json) are carried over.

The repetition plan (`plan.py`) gives every sample a count. Materialised: each sample is written as many
times as its count, copy j in pass j. Streamed: each sample is written once and `loader.py` replays the
planned stream from the manifest. One pass (every count 1) is the default.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa

from curate import schemas
from curate.engines.base import Engine
from curate.engines.local import LocalEngine
from curate.errors import CurateError
from curate.io import fs
from curate.io.stagedir import StageDir
from curate.shard import plan, sources
from curate.shard.jobs import KEY_DIGITS, candidate_files, cut
from curate.shard.reshard import ShardJob, write_shard

log = logging.getLogger(__name__)

NAME = "shard"
MANIFEST_VERSION = 2
MODES = ("materialised", "streamed")
CONFIG_FILE = "_config.json"


@dataclass(frozen=True)
class ShardConfig:
    samples_per_shard: int = 10_000  # DataComp's and img2dataset's default shard size
    max_shard_bytes: int = 1 << 30  # a shard is closed early rather than grow past 1 GiB
    seed: int = 0
    samples_seen: int | None = None  # the plan's budget S; None and passes None = one pass
    passes: float | None = None  # S = round(passes · unique samples)
    repetition: str = "materialised"  # or "streamed"
    uids: str | None = None  # a DataComp u8,u8 .npy instead of select/uids.npy
    source_shards: str | None = None  # img2dataset/DataComp shards instead of download/shards

    def check(self) -> None:
        if self.repetition not in MODES:
            raise CurateError(f"shard: repetition must be one of {MODES}, got {self.repetition!r}")
        if not 0 < self.samples_per_shard < 10 ** KEY_DIGITS:
            raise CurateError(f"shard: samples_per_shard must be in [1, {10 ** KEY_DIGITS - 1}]")
        if self.max_shard_bytes <= 0:
            raise CurateError("shard: max_shard_bytes must be positive")
        plan.PlanRequest(self.samples_seen, self.passes).budget(0)


def default_threads() -> int:
    """In-process, a shard is copied by one thread per core (they spend their time in system calls)."""
    return max(1, min(16, os.cpu_count() or 1))


def _fresh(sd: StageDir, config: ShardConfig) -> None:
    """Resume only what the same configuration started; a changed one starts over."""
    wanted = asdict(config)
    path = sd.file(CONFIG_FILE)
    if fs.exists(path) and fs.read_json(path) == wanted:
        return
    sfs, p = fs.url_to_fs(sd.path)
    for f in sfs.ls(p, detail=False):
        if f.rsplit("/", 1)[-1].endswith((".tar", "_stats.json")):
            sfs.rm(f)
    fs.write_json(path, wanted)


def run_shard(run_dir: str, config: ShardConfig | None = None, engine: Engine | None = None,
              threads: int | None = None) -> dict:
    """`threads` copy each shard (default: one per core in-process, where the stage has the machine; one
    on Spark and Ray, which run a task per core already)."""
    config = config or ShardConfig()
    config.check()
    sd, finished = StageDir.start(run_dir, NAME, requires="select" if config.uids is None else None)
    if finished is not None:
        return finished
    _fresh(sd, config)
    engine = engine or LocalEngine()
    threads = threads or (default_threads() if engine.name == LocalEngine.name else 1)
    cand = sources.load(run_dir, config.uids, config.source_shards)
    table = cand.table
    uids = table.column("uid").to_pylist()
    weights = table.column("weight").to_numpy()
    budget = plan.PlanRequest(config.samples_seen, config.passes).budget(len(uids))
    counts = plan.counts(uids, weights, budget)
    order, copy = plan.stream(uids, counts, config.seed)
    if config.repetition == "streamed":  # each planned sample once, in pass 0's order
        order, copy = order[copy == 0], copy[copy == 0]
    jobs, shard_col, key_col = cut(sd.file, candidate_files(engine, table), order, copy,
                                   config.samples_per_shard, config.max_shard_bytes, threads)
    # the manifest and sizes.json depend only on the plan: written while the shards are (Arrow and parquet
    # work releases the GIL); the completion marker still comes last
    with ThreadPoolExecutor(1, thread_name_prefix="curate-manifest") as side:
        tables = side.submit(_write_manifest, sd, cand, order, copy, counts, shard_col, key_col, jobs)
        shard_stats = engine.run_tasks(write_shard, jobs)
        tables.result()
    summary = {**plan.summary(counts, weights, budget), "seed": config.seed, "repetition": config.repetition,
               "samples_written": len(order), "manifest_schema": f"manifest.v{MANIFEST_VERSION}"}
    fs.write_json(sd.file("plan.json"), summary)
    written = int(np.count_nonzero(counts))
    result = {"stage": NAME, "engine": engine.name, "rows_in": len(uids) + sum(cand.refused.values()),
              "kept": written, "planned_zero": len(uids) - written, "rejected": cand.refused,
              "shards": len(jobs), "bytes": sum(s["bytes"] for s in shard_stats), "seed": config.seed,
              "repetition": config.repetition, "samples_seen": budget, "samples_written": len(order),
              "histogram": summary["histogram"]}
    sd.finish(result)
    return result


def _write_manifest(sd: StageDir, cand: sources.Candidates, order: np.ndarray, copy: np.ndarray,
                    counts: np.ndarray, shard_col: list[str], key_col: list[str], jobs: list[ShardJob]) -> None:
    manifest = _manifest(cand.table, cand.score_columns, order, copy, counts, shard_col, key_col)
    fs.write_table(manifest, sd.file("manifest.parquet"), schema=None)  # conformed to manifest.v2 above
    fs.write_json(sd.file("sizes.json"), {job.name: len(job) for job in jobs})


def _manifest(table: pa.Table, dynamic: tuple[str, ...], order: np.ndarray, copy: np.ndarray,
              counts: np.ndarray, shard_col: list[str], key_col: list[str]) -> pa.Table:
    """One row per written sample, in stream order: where it is, what was measured, its planned count."""
    idx = pa.array(order, pa.int64())
    rows = table.take(idx)
    cols = {"uid": rows.column("uid"), "shard": pa.array(shard_col, pa.string()),
            "key": pa.array(key_col, pa.string()),
            **{c: rows.column(c) for c in ("caption", *sources.FIXED_SCORES, "source_shard", "source_key", "weight")},
            "repetition": pa.array(counts[order], pa.int64()), "copy": pa.array(copy, pa.int32()),
            # score columns the score stage added (clip_<alias>, probes): the schema's dynamic float32 columns
            **{c: rows.column(c) for c in dynamic}}
    return schemas.conform(pa.table(cols), "manifest", MANIFEST_VERSION)
