"""What the shard program (`curate.shard.program`) asks of an engine, and the in-process implementation.

The program is written once against `Frames`; Spark (`curate.engines.spark_shard`), Ray
(`curate.engines.ray_shard`) and this process (`InProcess`, the fast path at demo size) run it. Every
function the program passes runs on one batch of rows or one group and is engine-free, so each engine
computes the same rows and writes the same bytes (tests/unit/shard/test_engines.py checks).

A frame is the engine's own handle (a Spark DataFrame, a Ray Dataset, a list of Arrow tables here).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

BatchFn = Callable[[pa.Table], pa.Table]

# the rows every reduction's batch function returns: (kind, key) groups, summed, min'd and max'd
PARTIAL = pa.schema([("kind", pa.string()), ("key", pa.int64()), ("n", pa.int64()), ("hi", pa.int64()),
                     ("lo", pa.int64()), ("imin", pa.int64()), ("imax", pa.int64())])
SUMS, MINS, MAXS = ("n", "hi", "lo"), ("imin",), ("imax",)


def partial(kind: str, key, n, hi=None, lo=None, imin=None, imax=None) -> pa.Table:
    """PARTIAL rows from arrays (or scalars) of equal length; missing values are null."""
    key = np.atleast_1d(np.asarray(key, np.int64))
    m = len(key)

    def col(v):
        return pa.nulls(m, pa.int64()) if v is None else pa.array(np.broadcast_to(np.asarray(v, np.int64), m))

    return pa.table({"kind": pa.array([kind] * m, pa.string()), "key": pa.array(key), "n": col(n), "hi": col(hi),
                     "lo": col(lo), "imin": col(imin), "imax": col(imax)}, schema=PARTIAL)


class Frames(Protocol):
    name: str

    def read(self, items: Sequence[dict], fn: Callable[[dict], pa.Table], schema: pa.Schema) -> Any:
        """`fn(item)` for every item, in the workers: the rows of a new frame."""

    def map(self, frame: Any, fn: BatchFn, schema: pa.Schema, columns: Sequence[str] | None = None) -> Any:
        """`fn` on every batch of `frame` (only `columns`, when given)."""

    def reduce(self, frame: Any, fn: BatchFn, columns: Sequence[str] | None = None) -> pa.Table:
        """`fn` gives PARTIAL rows per batch; the engine sums n, hi, lo and takes the min of imin and the max
        of imax per (kind, key). The result is small by construction and comes back here."""

    def collect(self, frame: Any, fn: BatchFn, schema: pa.Schema, columns: Sequence[str] | None = None) -> pa.Table:
        """`fn` on every batch, the rows brought here: only for results bounded by a stated constant."""

    def groups(self, frame: Any, key: str, fn: BatchFn, schema: pa.Schema, groups: int) -> Any:
        """The engine's shuffle: every row with the same `key` (int64) reaches one call of `fn`, with all of
        them; about `groups` distinct keys."""

    def gather(self, frame: Any, schema: pa.Schema) -> pa.Table:
        """The rows of a frame of per-group stats (one small row per output shard) brought here."""

    def left_join(self, frame: Any, other: Any, on: str, schema: pa.Schema) -> Any: ...

    def persist(self, frame: Any) -> Any: ...

    def release(self, frame: Any) -> None: ...

    def tasks(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list: ...


def aggregate(partials: pa.Table) -> pa.Table:
    """The reduction of PARTIAL rows (what every engine does in its own way), sorted by (kind, key)."""
    if partials.num_rows == 0:
        return PARTIAL.empty_table()
    aggs = [(c, "sum") for c in SUMS] + [(c, "min") for c in MINS] + [(c, "max") for c in MAXS]
    out = partials.group_by(["kind", "key"]).aggregate(aggs)
    out = out.rename_columns([{f"{c}_{op}": c for c, op in aggs}.get(c, c) for c in out.column_names])
    return out.select(PARTIAL.names).cast(PARTIAL).sort_by([("kind", "ascending"), ("key", "ascending")])


def group_runs(table: pa.Table, key: str, fn: BatchFn) -> list[pa.Table]:
    """`fn` on each run of equal `key` in a table sorted by it."""
    keys = table.column(key).to_numpy()
    if len(keys) == 0:
        return []
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    ends = np.append(starts[1:], len(keys))
    return [fn(table.slice(int(a), int(b - a))) for a, b in zip(starts, ends, strict=True)]


class InProcess:
    """The program in this process: a frame is a list of Arrow tables (one per read item)."""

    name = "local"

    def read(self, items, fn, schema):
        return [fn(item).select(schema.names).cast(schema) for item in items]

    def map(self, frame, fn, schema, columns=None):
        return [fn(t.select(list(columns)) if columns else t).select(schema.names).cast(schema) for t in frame]

    def reduce(self, frame, fn, columns=None):
        parts = [fn(t.select(list(columns)) if columns else t) for t in frame]
        return aggregate(pa.concat_tables(parts) if parts else PARTIAL.empty_table())

    def collect(self, frame, fn, schema, columns=None):
        parts = self.map(frame, fn, schema, columns)
        return pa.concat_tables(parts) if parts else schema.empty_table()

    def groups(self, frame, key, fn, schema, groups):
        if not frame:
            return []
        table = pa.concat_tables(frame)
        table = table.take(pc.sort_indices(table.column(key)))
        return [t.select(schema.names).cast(schema) for t in group_runs(table, key, fn)]

    def gather(self, frame, schema):
        return pa.concat_tables(frame) if frame else schema.empty_table()

    def left_join(self, frame, other, on, schema):
        right = pa.concat_tables(other) if other else None
        out = []
        for t in frame:
            if right is None or right.num_rows == 0:
                extra = [pa.nulls(t.num_rows, f.type) for f in schema if f.name not in t.column_names]
                t = pa.Table.from_arrays([*t.columns, *extra], names=[*t.column_names,
                                         *[f.name for f in schema if f.name not in t.column_names]])
            else:
                t = t.join(right, on, join_type="left outer")
            out.append(t.select(schema.names).cast(schema))
        return out

    def persist(self, frame):
        return frame

    def release(self, frame):
        return None

    def tasks(self, fn, items):
        return [fn(item) for item in items]
