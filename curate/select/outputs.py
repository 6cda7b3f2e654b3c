"""What the select stage writes, from the decided frame, on the engine that decided it:

- `decisions/NNNNN.parquet` (decisions.v2: uid, kept, reason, step, weight), one part per download shard,
  written by the workers (`Decisions` turns the policy state into those columns, batch by batch);
- `uids.npy`, DataComp's sorted `u8,u8` array of kept uids: the engine writes the kept uids as parts
  sorted by ranges of uid (`_work/uids/`), and this process streams them, one batch of a part at a time,
  into the file after its header (memory: one part's bytes and one batch, whatever the selection's size);
- the counts in `selection.json`, from per-part counts merged (`count_part`).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate import schemas
from curate.engines.base import StageSpec
from curate.errors import CurateError
from curate.io import dataset, fs, sums
from curate.io.dataset import PART_COL
from curate.stage import Stage

DECISIONS = schemas.load("decisions", 2)
UIDS_PART_ROWS = 250_000  # kept uids per sorted part, written by the engine (~4 MB read here at a time)
UIDS_BATCH = 16_384  # uids this process converts at a time: memory is one part's bytes and one batch


@dataclass(frozen=True)
class _Nothing:
    """Stages here have nothing to configure."""


class Decisions(Stage[_Nothing]):
    """The policy state (`_reason`, `_step`, `_weight`) as the decisions.v2 columns, with `_part`."""

    name = "decisions"
    reads = ("uid", "_reason", "_step", "_weight", PART_COL)

    def process_batch(self, table: pa.Table) -> pa.Table:
        kept = pc.is_null(table.column("_reason"))
        weight = pc.if_else(kept, table.column("_weight"), pa.scalar(0.0))
        return pa.table({"uid": table.column("uid"), "kept": kept, "reason": table.column("_reason"),
                         "step": table.column("_step"), "weight": weight, PART_COL: table.column(PART_COL)})


class KeptUids(Stage[_Nothing]):
    """Only the kept rows' uids."""

    name = "kept_uids"
    reads = ("uid", "kept")

    def process_batch(self, table: pa.Table) -> pa.Table:
        return table.filter(table.column("kept")).select(["uid"])


DECISIONS_FRAME = pa.schema([*DECISIONS, pa.field(PART_COL, pa.string())])
UIDS = pa.schema([("uid", pa.string())])


def write_decisions(engine, decided, folder: str, shards: int) -> dict:
    frame = engine.map_batches(decided, StageSpec(Decisions, _Nothing(), batch_size=65_536), DECISIONS_FRAME)
    tasks = max(1, min(shards, -(-shards // 32) + 2 * _parallelism(engine)))
    return engine.write_dataset(frame, folder, schema="decisions", version=2, sort_by=["uid"], tasks=tasks)


def count_part(path: str) -> dict:
    """Rows, kept, kept weight and rows per reason and per step of one decisions part."""
    t = dataset.read_part(path, ["kept", "reason", "step", "weight"])
    kept = t.filter(t.column("kept"))
    reasons = {r["values"]: r["counts"] for r in pc.value_counts(pc.drop_null(t.column("reason"))).to_pylist()}
    steps = {r["values"]: r["counts"] for r in pc.value_counts(pc.drop_null(t.column("step"))).to_pylist()}
    return {"pool": t.num_rows, "kept": kept.num_rows, "weighted_kept": pc.sum(kept.column("weight")).as_py() or 0.0,
            "reasons": reasons, "steps": steps}


def write_uids(engine, decisions: str, work: str, path: str, kept: int) -> None:
    """`uids.npy` from the decisions: sorted parts of kept uids on the engine, streamed into one file here."""
    frame = engine.map_batches(engine.read_dataset(decisions, pa.schema([("uid", pa.string()), ("kept", pa.bool_())])),
                               StageSpec(KeptUids, _Nothing(), batch_size=65_536), UIDS)
    folder = fs.join(work, "uids")
    _remove(folder)
    parts = max(1, math.ceil(kept / UIDS_PART_ROWS))
    engine.write_dataset(frame, folder, partitions=parts, key="uid", by_range=True, sort_by=["uid"])
    from curate.select.run import uids_to_u8u8

    dtype = np.dtype("u8,u8")
    with sums.open_part(path) as fh:  # hashed as written: its sidecar follows (curate verify checks it)
        np.lib.format.write_array_header_1_0(fh, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                  "fortran_order": False, "shape": (kept,)})
        written, last = 0, None
        for part in dataset.part_paths(folder):
            for batch in dataset.iter_part(part, ["uid"], UIDS_BATCH):
                arr = uids_to_u8u8(batch.column("uid"))
                if len(arr) == 0:
                    continue
                # the engine sorted strings: mixed-case hex digits are not in the numbers' order
                if last is not None and tuple(arr[0].tolist()) < last:
                    raise CurateError(f"select: {part}: kept uids are not in order (upper- and lower-case hex "
                                      "digits mixed?); uids.npy needs one case")
                fh.write(arr.tobytes())
                written, last = written + len(arr), tuple(arr[-1].tolist())
    if written != kept:
        raise RuntimeError(f"select: {written} kept uids written to uids.npy, {kept} counted")
    _remove(folder)


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _remove(path: str) -> None:
    fs.remove_tree(path)


def _parallelism(engine) -> int:
    session = getattr(engine, "session", None)
    return session.sparkContext.defaultParallelism if session is not None else 1
