"""The select stage: a policy (a shipped recipe or a YAML file) over every scored sample, on an engine from
storage to storage (`curate.select.pool` builds the pool in the workers, one download shard per descriptor).

Outputs: `uids.npy` (the kept uids, sorted, in DataComp's `u8,u8` format, so DataComp's resharder
reads it), `decisions/NNNNN.parquet` (decisions.v2: uid, kept, reason, step, weight; one part per download
shard) and `selection.json` (policy, resolved thresholds, counts per step, input run). On Spark by default
(a local one on one machine); `engine="local"` runs the same policy code in this process with the same
bytes, for small runs and tests.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from curate.errors import CurateError
from curate.io import dataset, fs
from curate.io.dataset import PART_COL
from curate.io.stagedir import StageDir
from curate.select import outputs, pool
from curate.select import steps as _steps  # noqa: F401  (registers every step)
from curate.select.execute import plan, required_columns, select_frame
from curate.select.policy import Policy, Step, load_policy, make_step, split_tables

log = logging.getLogger(__name__)

NAME = "select"
_HEX = np.full(256, 255, dtype=np.uint8)
_HEX[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_HEX[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16)
_HEX[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16)
_CHUNK = 16_384  # uids converted at a time (2 MB of digits)


@dataclass(frozen=True)
class SelectConfig:
    basic_filter: bool = True
    clip_fraction: float | None = 0.3  # DataComp's CLIP score (L/14 30%) baseline
    clip_threshold: float | None = None  # DataComp's B/32 threshold baseline is 0.3
    # a shipped policy name or a YAML file (fingerprinted with its content); replaces the three fields above
    policy: str | None = field(default=None, metadata={"files": True})
    target_size: int | None = None  # keep exactly this many (overrides the policy file's target)
    # spark (local[*] on one machine, or the cluster), or local: in-process, for small runs. Not fingerprinted:
    # both engines write the same bytes (tests/unit/select/test_run.py), so a rerun may switch engines
    engine: str = field(default="spark", metadata={"fingerprint": False})

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
    """DataComp's uid array: 128-bit hex uids as (upper, lower) uint64 pairs, sorted. `uids`: a pyarrow string
    array (read without Python objects) or anything numpy takes as bytes; converted _CHUNK rows at a time, so
    the memory beyond the 16-byte result is bounded."""
    raw = _uid_bytes(uids)
    out = np.zeros(len(raw), dtype="u8,u8")
    powers = np.uint64(16) ** np.arange(15, -1, -1, dtype=np.uint64)
    for lo in range(0, len(raw), _CHUNK):
        digits = _HEX[raw[lo:lo + _CHUNK]]
        if (digits == 255).any():
            raise CurateError("select: uids must be 32 hex digits")
        out["f0"][lo:lo + _CHUNK] = digits[:, :16].astype(np.uint64) @ powers
        out["f1"][lo:lo + _CHUNK] = digits[:, 16:].astype(np.uint64) @ powers
    out.sort()
    return out


def _uid_bytes(uids) -> np.ndarray:
    """The uids as an (n, 32) uint8 view: of an Arrow string array's value buffer when every uid is 32 bytes."""
    import pyarrow as pa

    if isinstance(uids, pa.ChunkedArray):
        uids = uids.combine_chunks()
    if isinstance(uids, pa.Array) and pa.types.is_string(uids.type) and uids.null_count == 0:
        n = len(uids)
        offsets = np.frombuffer(uids.buffers()[1], dtype=np.int32)[uids.offset:uids.offset + n + 1]
        if n and not (np.diff(offsets) == 32).all():
            raise CurateError("select: uids must be 32 hex digits")
        data = np.frombuffer(uids.buffers()[2], dtype=np.uint8) if n else np.zeros(0, np.uint8)
        return data[offsets[0]:offsets[0] + 32 * n].reshape(n, 32)
    if isinstance(uids, pa.Array):
        uids = uids.to_numpy(zero_copy_only=False)
    b = np.asarray(uids)
    if b.dtype.kind == "O":
        b = b.astype(str)
    try:
        if len(b) and (np.char.str_len(b) != 32).any():
            raise CurateError("select: uids must be 32 hex digits")
        return np.frombuffer(b.astype("S32").tobytes(), dtype=np.uint8).reshape(-1, 32)
    except UnicodeEncodeError:
        raise CurateError("select: uids must be 32 hex digits") from None


def u8u8_to_uids(arr: np.ndarray) -> list[str]:
    """The 32-hex-digit uids of a DataComp array, in its order (one hex pass over the big-endian bytes)."""
    pairs = np.empty((len(arr), 2), dtype=">u8")
    pairs[:, 0], pairs[:, 1] = arr["f0"], arr["f1"]
    text = pairs.tobytes().hex()
    return [text[i:i + 32] for i in range(0, len(text), 32)]


def _engine(config: SelectConfig):
    if config.engine == "spark":
        from curate.engines.spark import SparkEngine

        return SparkEngine()
    if config.engine == "local":
        from curate.engines.local import LocalEngine

        return LocalEngine()
    raise CurateError(f"select: engine must be spark or local, not {config.engine!r}")


def run_select(run_dir: str, config: SelectConfig | None = None, engine=None) -> dict:
    """Select on `engine` (default: config.engine), from the run's tables in storage to select/ in storage."""
    config = config or SelectConfig()
    policy = config.resolve_policy()
    sd, finished = StageDir.start(run_dir, NAME, requires="score", config=config)
    if finished is not None:
        return finished
    with sd:  # the stage's lock goes however the work ends
        if engine is None:
            with _engine(config) as own:
                return _select(own, run_dir, sd, policy)
        return _select(engine, run_dir, sd, policy)


def _select(engine, run_dir: str, sd: StageDir, policy: Policy) -> dict:
    needed = {c for _, s in plan(policy)[0] for c in required_columns(s)}
    shape = pool.schema(run_dir, needed)
    items = pool.items(run_dir, pool.EMBEDDING in shape.names)
    frame = engine.read_items(items, pool.PoolRows(shape), shape)
    decided, resolved = select_frame(engine, frame, policy, keep_columns=(PART_COL,))
    _remove(sd.file("decisions"))  # all or nothing: an interrupted attempt's parts go
    outputs.write_decisions(engine, decided, sd.file("decisions"), len(items))
    parts = dataset.part_paths(sd.file("decisions"))
    counts = engine.for_each(outputs.count_part, parts, max(1, len(parts) // 20_000 + 1))
    outputs.write_uids(engine, sd.file("decisions"), sd.file("_work"), sd.file("uids.npy"), counts.get("kept", 0))
    _remove(sd.file("_work"))
    inputs = {"run": "..", "tables": ["score/scores", "download/samples"]  # relative: a copied run stays valid
              + (["score/embeddings"] if pool.EMBEDDING in shape.names else []), "engine": engine.name}
    result = write_summary(sd, policy, resolved, inputs, counts)
    sd.finish(result)
    return result


def write_summary(sd: StageDir, policy: Policy, resolved: dict, inputs: dict, counts: dict) -> dict:
    """selection.json (policy, resolved thresholds, counts per step) and the steps' own tables beside it."""
    resolved, tables = split_tables(resolved)  # per-step tables (MetaCLIP's entry counts) go beside it
    for name, table in tables.items():
        fs.write_table(table, sd.file(name))
    per_step = counts.get("steps", {})
    reasons = dict(sorted(counts.get("reasons", {}).items()))
    fs.write_json(sd.file("selection.json"), {
        "policy": policy.describe(), "inputs": inputs,
        "steps": [{"name": name, "resolved": params, "rejected": per_step.get(name, 0)}
                  for name, params in resolved.items()],
        "pool": counts.get("pool", 0), "kept": counts.get("kept", 0),
        # summed per part: rounded, so the figure does not depend on the order the engine adds the parts in
        "weighted_kept": round(float(counts.get("weighted_kept", 0.0)), 6),
        "reasons": reasons, **({"tables": sorted(tables)} if tables else {})})
    return {"stage": NAME, "rows_in": counts.get("pool", 0), "kept": counts.get("kept", 0), "rejected": reasons}


def _remove(path: str) -> None:
    fs.remove_tree(path)
