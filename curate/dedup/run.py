"""The dedup stage: hash the downloaded images on an engine, then decide (see `curate.dedup.decide` for
the order of checks and the survivor rule).

Outputs in `<run>/dedup/`: `hashes/NNNNN.parquet` (hashes.v1, one per download shard),
`decisions.parquet` (dedup.v1), `_stats.json` (rows, kept, rejections by reason, near-duplicate groups,
how many samples safety hash lists removed) and `_SUCCESS` last.
"""

from __future__ import annotations

import logging

import pyarrow.compute as pc

from curate.dedup import hashes as hashing
from curate.dedup.config import DedupConfig
from curate.dedup.decide import decide
from curate.dedup.refs import Refs, hash_folder, load_hash_lists
from curate.engines.base import Engine
from curate.io import fs
from curate.io.stagedir import StageDir
from curate.stage import StageStats

log = logging.getLogger(__name__)

NAME = "dedup"
__all__ = ["NAME", "DedupConfig", "decide", "run_dedup"]


def run_dedup(engine: Engine, run_dir: str, config: DedupConfig | None = None) -> dict:
    config = config or DedupConfig()
    if StageDir(run_dir, NAME).done():
        return StageDir.start(run_dir, NAME)[1] or {}
    # read the reference sets before touching the run: a bad list or folder fails before any work
    safety = load_hash_lists(config.hash_lists) if config.hash_lists else Refs()
    evalset = hash_folder(config.eval_images) if config.eval_images else Refs()
    sd, _ = StageDir.start(run_dir, NAME, requires="download")
    samples = fs.read_table(fs.join(run_dir, "download", "samples"), schema="samples")
    hashes = hashing.compute(engine, run_dir, samples, sd.file("hashes"))
    decisions = decide(engine, samples, config, hashes, safety, evalset)
    fs.write_table(decisions, sd.file("decisions.parquet"), schema="dedup")
    stats = StageStats.from_table(decisions)
    rejected = decisions.filter(pc.is_valid(decisions.column("duplicate_of")))
    groups = pc.count_distinct(rejected.column("duplicate_of")).as_py()
    near = rejected.filter(pc.equal(rejected.column("reason"), "near_duplicate"))
    result = {"stage": NAME, "engine": engine.name, "duplicate_groups": groups,
              "near_duplicate_groups": pc.count_distinct(near.column("duplicate_of")).as_py(),
              "safety_hash_list_removed": stats.rejected.get("safety_hash_list", 0),
              "safety_hash_list_entries": len(safety), "eval_images_hashed": len(evalset.sha256),
              "config": {"near_distance": config.near_distance, "bands": config.bands_for(config.near_distance),
                         "hash_list_distance": config.hash_list_distance,
                         "placeholder_min_urls": config.placeholder_min_urls},
              **stats.to_dict()}
    sd.finish(result)
    return result
