"""The select stage: a policy (a shipped recipe or a YAML file) over every scored sample.

Outputs: `uids.npy` (the kept uids, sorted, in DataComp's `u8,u8` format, so DataComp's resharder
reads it), `decisions.parquet` (decisions.v2: uid, kept, reason, step, weight) and `selection.json`
(policy, resolved thresholds, counts per step, input run). In-process by default; `engine="spark"`
runs the same policy code on Spark with the same result.
"""

from __future__ import annotations

import io
import logging
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate import schemas
from curate.errors import CurateError
from curate.io import fs
from curate.io.stagedir import StageDir
from curate.select import steps as _steps  # noqa: F401  (registers every step)
from curate.select.execute import decisions_table, plan, required_columns, select_frame, widen_halves
from curate.select.policy import Policy, Step, load_policy, make_step, split_tables
from curate.stage import StageStats

log = logging.getLogger(__name__)

NAME = "select"
_HEX = np.full(256, 255, dtype=np.uint8)
_HEX[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_HEX[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16)
_HEX[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16)
# download/samples columns the pool takes: always, and when the run's samples have them (samples.v3's
# `source`, the input's source dataset, which `mix` groups by default; a run downloaded before v3 has none)
SAMPLE_COLUMNS = ("caption", "original_width", "original_height")
OPTIONAL_SAMPLE_COLUMNS = ("source",)


@dataclass(frozen=True)
class SelectConfig:
    basic_filter: bool = True
    clip_fraction: float | None = 0.3  # DataComp's CLIP score (L/14 30%) baseline
    clip_threshold: float | None = None  # DataComp's B/32 threshold baseline is 0.3
    policy: str | None = None  # a shipped policy name or a YAML file; replaces the three fields above
    target_size: int | None = None  # keep exactly this many (overrides the policy file's target)
    engine: str = "local"  # local (in-process) or spark

    def steps(self) -> list[Step]:
        steps = [make_step("datacomp_basic")] if self.basic_filter else []
        fraction = None if self.clip_threshold is not None else self.clip_fraction
        if fraction is not None or self.clip_threshold is not None:
            steps.append(make_step("clip_score", fraction=fraction, threshold=self.clip_threshold))
        return steps

    def resolve_policy(self) -> Policy:
        if self.policy is not None:
            return load_policy(self.policy, self.target_size)
        steps = self.steps()
        if not steps and self.target_size is None:
            raise CurateError("select: the policy has no steps")
        return Policy(name="datacomp", steps=tuple(steps), target_size=self.target_size, source="flags")


def uids_to_u8u8(uids) -> np.ndarray:
    """DataComp's uid array: 128-bit hex uids as (upper, lower) uint64 pairs, sorted."""
    b = np.asarray(uids, dtype="S32") if not isinstance(uids, np.ndarray) or uids.dtype.kind != "S" else uids
    out = np.zeros(len(b), dtype="u8,u8")
    if len(b) == 0:
        return out
    digits = _HEX[np.frombuffer(b.tobytes(), dtype=np.uint8).reshape(-1, 32)]
    if (digits == 255).any() or (np.char.str_len(b) != 32).any():
        raise CurateError("select: uids must be 32 hex digits")
    powers = np.uint64(16) ** np.arange(15, -1, -1, dtype=np.uint64)
    out["f0"] = digits[:, :16].astype(np.uint64) @ powers
    out["f1"] = digits[:, 16:].astype(np.uint64) @ powers
    out.sort()
    return out


def u8u8_to_uids(arr: np.ndarray) -> list[str]:
    """The 32-hex-digit uids of a DataComp array, in its order (one hex pass over the big-endian bytes)."""
    pairs = np.empty((len(arr), 2), dtype=">u8")
    pairs[:, 0], pairs[:, 1] = arr["f0"], arr["f1"]
    text = pairs.tobytes().hex()
    return [text[i:i + 32] for i in range(0, len(text), 32)]


def pool_table(run_dir: str, needed: set[str] | None = None) -> pa.Table:
    """Every sample that reached selection: every score column (the score stage's dynamic `clip_<alias>`
    and probe columns included), the download metadata the policies read (`source` too, when the run's
    samples have it), and image embeddings when a step needs them."""
    scores = fs.read_table(fs.join(run_dir, "score", "scores"))
    scores = scores.filter(pc.equal(scores.column("status"), "ok"))
    samples = fs.read_table(fs.join(run_dir, "download", "samples"), schema="samples")
    keep = [c for c in scores.column_names if c not in ("shard", "key", "status", "error")]
    optional = [c for c in OPTIONAL_SAMPLE_COLUMNS if c in samples.column_names and c not in keep]
    table = scores.select(keep).join(samples.select(["uid", *SAMPLE_COLUMNS, *optional]), "uid")
    missing = [c for c in OPTIONAL_SAMPLE_COLUMNS if needed and c in needed and c not in table.column_names]
    if missing:
        raise CurateError(f"select: the policy reads {missing[0]!r}, and this run's download/samples has no such "
                          "column; download an input with a `source` column (or name it with --source-col)")
    if needed and "image_embedding" in needed:
        emb = fs.read_table(fs.join(run_dir, "score", "embeddings"), columns=["uid", "image_embedding"])
        idx = pc.index_in(table.column("uid"), value_set=emb.column("uid"))  # acero joins no list columns
        if idx.null_count:
            raise CurateError(f"select: {idx.null_count} scored samples have no image embedding in score/embeddings")
        table = table.append_column("image_embedding", widen_halves(emb).column("image_embedding").take(idx))
    return table.sort_by([("uid", "ascending")])


def write_outputs(sd: StageDir, decided: pa.Table, policy: Policy, resolved: dict, inputs: dict) -> dict:
    resolved, tables = split_tables(resolved)  # per-step tables (MetaCLIP's entry counts) go beside it
    for name, table in tables.items():
        fs.write_table(table, sd.file(name))
    decided = decided.sort_by([("uid", "ascending")])
    decisions = schemas.conform(decisions_table(decided), "decisions", 2)
    kept = decisions.filter(decisions.column("kept"))
    buf = io.BytesIO()
    np.save(buf, uids_to_u8u8(kept.column("uid").to_numpy(zero_copy_only=False)))
    fs.write_bytes(sd.file("uids.npy"), buf.getvalue())
    fs.write_table(decisions, sd.file("decisions.parquet"))
    per_step = Counter(s for s in decisions.column("step").to_pylist() if s is not None)
    weights = kept.column("weight").to_numpy()
    fs.write_json(sd.file("selection.json"), {
        "policy": policy.describe(), "inputs": inputs,
        "steps": [{"name": name, "resolved": params, "rejected": per_step.get(name, 0)}
                  for name, params in resolved.items()],
        "pool": decisions.num_rows, "kept": kept.num_rows, "weighted_kept": float(weights.sum()),
        "reasons": dict(sorted(Counter(r for r in decisions.column("reason").to_pylist() if r).items()))})
    return {"stage": NAME, **StageStats.from_table(decisions).to_dict()}


def run_select(run_dir: str, config: SelectConfig | None = None, engine=None) -> dict:
    config = config or SelectConfig()
    policy = config.resolve_policy()
    sd, finished = StageDir.start(run_dir, NAME, requires="score")
    if finished is not None:
        return finished
    needed = {c for _, s in plan(policy)[0] for c in required_columns(s)}
    table = pool_table(run_dir, needed)
    inputs = {"run": "..", "tables": ["score/scores", "download/samples"]  # relative: a copied run stays valid
              + (["score/embeddings"] if "image_embedding" in needed else []), "engine": config.engine}
    if engine is None and config.engine == "spark":
        from curate.engines.spark import SparkEngine

        with SparkEngine() as spark:
            decided, resolved = _decide(spark, table, policy)
    elif engine is None and config.engine != "local":
        raise CurateError(f"select: engine must be local or spark, not {config.engine!r}")
    else:
        decided, resolved = _decide(engine, table, policy)
    result = write_outputs(sd, decided, policy, resolved, inputs)
    sd.finish(result)
    return result


def _decide(engine, table: pa.Table, policy: Policy) -> tuple[pa.Table, dict]:
    if engine is None:
        from curate.engines.local import LocalEngine

        engine = LocalEngine()
    frame, resolved = select_frame(engine, engine.from_arrow(widen_halves(table)), policy)
    return engine.to_arrow(frame), resolved
