"""The shard program (`curate.shard.program`, `curate.shard.execute`) on Ray Data: batch functions in
`map_batches` tasks, reductions as `groupby(...).aggregate`, the move of rows to output blocks as
`groupby(block).map_groups` (Ray Data's shuffle), each block's task writing its own tars, manifest part and
stats. The candidates are read once by Ray tasks and materialised in the object store for the plan's
counting passes. What reaches the driver: reductions, the exact cut's band, one stats row per output tar."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import pyarrow as pa
import ray
import ray.data
from ray.data.aggregate import Max, Min, Sum

from curate.engines.ray import _root_cause
from curate.errors import CurateError
from curate.shard.frames import MAXS, MINS, PARTIAL, SUMS

log = logging.getLogger(__name__)


class _Batch:
    def __init__(self, fn: Callable[[pa.Table], pa.Table], schema: pa.Schema) -> None:
        self.fn, self.schema = fn, schema
        self.__name__ = type(fn).__name__  # Ray Data names its operators after the function

    def __call__(self, batch: pa.Table) -> pa.Table:
        return self.fn(batch).select(self.schema.names).cast(self.schema)


class RayFrames:
    name = "ray"

    def __init__(self, engine) -> None:
        self.engine = engine

    @staticmethod
    def _table(ds: ray.data.Dataset, schema: pa.Schema) -> pa.Table:
        try:
            tables = ray.get(ds.to_arrow_refs())
        except CurateError:
            raise
        except Exception as exc:  # what a task raised, in one line, not Ray's wrappers
            raise _task_error(exc) from exc
        tables = [t.select(schema.names).cast(schema) for t in tables if t.num_rows]
        return pa.concat_tables(tables) if tables else schema.empty_table()

    def read(self, items: Sequence[dict], fn, schema: pa.Schema) -> ray.data.Dataset:
        if not items:
            return ray.data.from_arrow(schema.empty_table())
        ds = ray.data.from_items([{"item": dict(i)} for i in items], override_num_blocks=len(items))
        return ds.map_batches(_ReadItems(fn, schema), batch_size=1, batch_format="pyarrow")

    def map(self, frame: ray.data.Dataset, fn, schema: pa.Schema, columns: Sequence[str] | None = None):
        ds = frame.select_columns(list(columns)) if columns else frame
        return ds.map_batches(_Batch(fn, schema), batch_size=None, batch_format="pyarrow")

    def reduce(self, frame: ray.data.Dataset, fn, columns: Sequence[str] | None = None) -> pa.Table:
        ds = self.map(frame, fn, PARTIAL, columns)
        aggs = [Sum(c, alias_name=c) for c in SUMS] + [Min(c, alias_name=c) for c in MINS] + \
            [Max(c, alias_name=c) for c in MAXS]
        out = self._table(ds.groupby(["kind", "key"]).aggregate(*aggs), PARTIAL)
        return out.sort_by([("kind", "ascending"), ("key", "ascending")])

    def collect(self, frame, fn, schema: pa.Schema, columns: Sequence[str] | None = None) -> pa.Table:
        return self._table(self.map(frame, fn, schema, columns), schema)

    def groups(self, frame: ray.data.Dataset, key: str, fn, schema: pa.Schema, groups: int):
        return frame.groupby(key).map_groups(_Batch(fn, schema), batch_format="pyarrow")

    def gather(self, frame: ray.data.Dataset, schema: pa.Schema) -> pa.Table:
        return self._table(frame, schema)

    def left_join(self, frame, other, on: str, schema: pa.Schema):
        joined = frame.join(other, "left_outer", num_partitions=max(1, frame.num_blocks()), on=(on,))
        return joined.select_columns(schema.names)

    def persist(self, frame: ray.data.Dataset) -> ray.data.Dataset:
        try:
            return frame.materialize()
        except Exception as exc:
            raise _task_error(exc) from exc

    def release(self, frame) -> None:
        return None

    def tasks(self, fn, items: Sequence) -> list:
        return self.engine.run_tasks(fn, items)


def _task_error(exc: BaseException) -> CurateError:
    """A failed Ray Data task as one line: a CurateError it raised as is, anything else named by its cause."""
    root = _root_cause(exc)
    text = str(root).strip().splitlines()
    if isinstance(root, CurateError):
        return CurateError(text[0] if text else "a Ray task failed")
    return CurateError(f"a Ray task failed: {type(root).__name__}: {text[-1] if text else ''}")


class _ReadItems:
    def __init__(self, fn: Callable[[dict], pa.Table], schema: pa.Schema) -> None:
        self.fn, self.schema = fn, schema

    def __call__(self, batch: pa.Table) -> pa.Table:
        tables = [self.fn(row["item"]).select(self.schema.names).cast(self.schema) for row in batch.to_pylist()]
        return pa.concat_tables(tables) if tables else self.schema.empty_table()
