"""The select stage: the DataComp policy (basic filter, then CLIP score) over every scored sample.

Outputs: `uids.npy` (the kept uids, sorted, in DataComp's `u8,u8` format, so DataComp's resharder
reads it), `decisions.parquet` (uid, kept, reason, step) and `selection.json` (policy, resolved
thresholds, counts per step, input run).
"""

from __future__ import annotations

import io
import logging
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.io import fs
from curate.io.stagedir import StageDir
from curate.select import datacomp  # noqa: F401  (registers the DataComp steps)
from curate.select.policy import Step, apply, make_step
from curate.stage import StageStats

log = logging.getLogger(__name__)

NAME = "select"


@dataclass(frozen=True)
class SelectConfig:
    basic_filter: bool = True
    clip_fraction: float | None = 0.3  # DataComp's CLIP score (L/14 30%) baseline
    clip_threshold: float | None = None  # DataComp's B/32 threshold baseline is 0.3

    def steps(self) -> list[Step]:
        steps = [make_step("datacomp_basic")] if self.basic_filter else []
        fraction = None if self.clip_threshold is not None else self.clip_fraction
        if fraction is not None or self.clip_threshold is not None:
            steps.append(make_step("clip_score", fraction=fraction, threshold=self.clip_threshold))
        return steps


def uids_to_u8u8(uids: list[str]) -> np.ndarray:
    """DataComp's uid array: 128-bit hex uids as (upper, lower) uint64 pairs, sorted."""
    arr = np.array([(int(u[:16], 16), int(u[16:32], 16)) for u in uids], dtype="u8,u8")
    arr.sort()
    return arr


def u8u8_to_uids(arr: np.ndarray) -> list[str]:
    return [f"{int(hi):016x}{int(lo):016x}" for hi, lo in arr.tolist()]


def pool_table(run_dir: str) -> pa.Table:
    """Every sample that reached selection, with the columns the policies read."""
    scores = fs.read_table(fs.join(run_dir, "score", "scores"), schema="scores")
    scores = scores.filter(pc.equal(scores.column("status"), "ok"))
    samples = fs.read_table(fs.join(run_dir, "download", "samples"), schema="samples")
    meta = samples.select(["uid", "caption", "original_width", "original_height"])
    table = scores.select(["uid", "clip_similarity", "language", "language_score"]).join(meta, "uid")
    return table.sort_by([("uid", "ascending")])


def run_select(run_dir: str, config: SelectConfig | None = None) -> dict:
    config = config or SelectConfig()
    sd, finished = StageDir.start(run_dir, NAME, requires="score")
    if finished is not None:
        return finished
    table = pool_table(run_dir)
    steps = config.steps()
    decision = apply(steps, table)
    kept = np.array([r is None for r in decision.reason])
    decisions = pa.table({"uid": table.column("uid"), "kept": pa.array(kept),
                          "reason": pa.array(decision.reason.tolist(), pa.string()),
                          "step": pa.array(decision.step.tolist(), pa.string())})
    buf = io.BytesIO()
    np.save(buf, uids_to_u8u8([u for u, k in zip(table.column("uid").to_pylist(), kept, strict=True) if k]))
    fs.write_bytes(sd.file("uids.npy"), buf.getvalue())
    fs.write_table(decisions, sd.file("decisions.parquet"), schema="decisions")
    stats = StageStats.from_table(decisions)
    per_step = Counter(s for s in decision.step.tolist() if s is not None)
    fs.write_json(sd.file("selection.json"), {
        "policy": "datacomp", "config": asdict(config), "inputs": ["score/scores", "download/samples"],
        "steps": [{"name": s.name, "params": decision.resolved[s.name],
                   "rejected": per_step.get(s.name, 0)} for s in steps],
        "pool": table.num_rows, "kept": int(kept.sum())})
    result = {"stage": NAME, **stats.to_dict()}
    sd.finish(result)
    return result
