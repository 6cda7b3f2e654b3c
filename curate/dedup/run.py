"""The dedup stage: hash the downloaded images (one engine task per shard), then decide on Spark (see
`curate.dedup.rules` for the order of checks; `curate.engines.spark_dedup` runs them and the survivor rule).

Outputs in `<run>/dedup/`: `hashes/NNNNN.parquet` (hashes.v2, one per download shard), `decisions/NNNNN.parquet`
(dedup.v1, the decisions of download shard NNNNN's rows, written by the executors), `_stats.json` (rows,
kept, rejections by reason, duplicate groups, how many samples safety hash lists removed; counted by the
engine) and `_SUCCESS` last. `_work/` holds the rules' checkpoints while they run. With hash lists, the files
of the samples they match are then removed from the download's tars, their hashes kept in
`download/purged/` (`curate.dedup.purge`), before `_SUCCESS`.
"""

from __future__ import annotations

import logging

import pyarrow as pa

from curate.dedup import hashes as hashing
from curate.dedup.config import DedupConfig
from curate.dedup.purge import purge
from curate.dedup.refs import Refs, hash_folder, load_hash_lists
from curate.engines.base import Engine
from curate.errors import CurateError
from curate.io import fs
from curate.io.stagedir import StageDir

log = logging.getLogger(__name__)

NAME = "dedup"
__all__ = ["NAME", "DedupConfig", "run_dedup"]


def _remove(path: str) -> None:
    ffs, p = fs.url_to_fs(path)
    if ffs.exists(p):
        ffs.rm(p, recursive=True)


def run_dedup(engine: Engine, run_dir: str, config: DedupConfig | None = None) -> dict:
    config = config or DedupConfig()
    finished = StageDir.finished(run_dir, NAME, config)
    if finished is not None:
        return finished
    if engine.name != "spark":
        raise CurateError(f"dedup runs on Spark, not the {engine.name} engine (a local Spark on one machine)")
    # read the reference sets before touching the run: a bad list or folder fails before any work
    safety = load_hash_lists(config.hash_lists) if config.hash_lists else Refs()
    evalset = hash_folder(config.eval_images) if config.eval_images else Refs()
    sd, finished = StageDir.start(run_dir, NAME, requires="download", config=config)
    if finished is not None:
        return finished
    with sd:  # the stage's lock goes however the work ends
        return _dedup(engine, run_dir, sd, config, safety, evalset)


def _dedup(engine: Engine, run_dir: str, sd: StageDir, config: DedupConfig, safety: Refs, evalset: Refs) -> dict:
    samples_dir = fs.join(run_dir, "download", "samples")
    hashing.compute(engine, run_dir, sd.file("hashes"))
    work, decisions_dir = sd.file("_work"), sd.file("decisions")
    _remove(decisions_dir)  # decisions are all or nothing: an interrupted attempt's parts go
    from curate.engines.spark_dedup import decide, decision_stats

    decide(engine, samples_dir, sd.file("hashes"), config, safety, evalset, decisions_dir, work)
    stats, groups, near_groups = decision_stats(engine, decisions_dir)
    _remove(work)
    purged = purge(engine, run_dir, decisions_dir, sd.file("hashes")) if len(safety) else {}
    result = {"stage": NAME, "engine": engine.name, "duplicate_groups": groups,
              "near_duplicate_groups": near_groups,
              "safety_hash_list_removed": stats.rejected.get("safety_hash_list", 0),
              "safety_hash_list_entries": len(safety), "eval_images_hashed": len(evalset.sha256),
              "safety_files_removed": purged.get("safety_files_removed", 0),
              "safety_shards_rewritten": purged.get("safety_shards_rewritten", 0),
              "config": {"near_distance": config.near_distance, "hash_list_distance": config.hash_list_distance,
                         "placeholder_min_urls": config.placeholder_min_urls, "near_hash": config.near_hash,
                         "pdq_distance": config.pdq_distance,
                         "hash_list_pdq_distance": config.hash_list_pdq_distance},
              **stats.to_dict()}
    sd.finish(result)
    return result


def read_decisions(run_dir: str, columns: list[str] | None = None) -> pa.Table:
    """The whole decisions table in this process (demo-size runs and tests)."""
    return fs.read_table(fs.join(run_dir, NAME, "decisions"), columns=columns)
