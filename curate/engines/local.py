"""The in-process engine: pyarrow tables in this process. The reference the others must agree with."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.engines.base import StageSpec
from curate.io import fs
from curate.stage import build

T = TypeVar("T")
R = TypeVar("R")


class LocalEngine:
    name = "local"

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def read_parquet(self, paths: Sequence[str]) -> pa.Table:
        return pa.concat_tables([fs.read_table(p) for p in paths])

    def from_arrow(self, table: pa.Table) -> pa.Table:
        return table

    def to_arrow(self, frame: pa.Table) -> pa.Table:
        return frame

    def map_batches(self, frame: pa.Table, spec: StageSpec, output_schema: pa.Schema) -> pa.Table:
        stage = build(spec.stage_cls, spec.config)
        try:
            outs = [stage(pa.Table.from_batches([b], schema=frame.schema))
                    for b in frame.to_batches(max_chunksize=spec.batch_size)]
        finally:
            stage.teardown()
        if not outs:
            return output_schema.empty_table()
        return pa.concat_tables(outs).select(output_schema.names).cast(output_schema)

    def rank_in_groups(self, frame: pa.Table, key: str, order: Sequence[str], rank_col: str,
                       first_col: str, value_col: str) -> pa.Table:
        """Number rows within each `key` group by `order` (0 = first) and give each the first's value."""
        if frame.num_rows == 0:
            return frame.append_column(rank_col, pa.array([], pa.int32())).append_column(
                first_col, pa.array([], frame.schema.field(value_col).type))
        idx = pc.sort_indices(frame, sort_keys=[(key, "ascending"), *[(c, "ascending") for c in order]])
        keys = frame.column(key).take(idx).to_numpy(zero_copy_only=False)
        values = frame.column(value_col).take(idx).to_numpy(zero_copy_only=False)
        starts = np.ones(len(keys), dtype=bool)
        starts[1:] = keys[1:] != keys[:-1]
        group_start = np.maximum.accumulate(np.where(starts, np.arange(len(keys)), 0))
        rank_sorted = np.arange(len(keys)) - group_start
        rank = np.empty(len(keys), dtype=np.int32)
        first = np.empty(len(keys), dtype=object)
        order_idx = idx.to_numpy()
        rank[order_idx] = rank_sorted
        first[order_idx] = values[group_start]
        return frame.append_column(rank_col, pa.array(rank, pa.int32())).append_column(
            first_col, pa.array(first, frame.schema.field(value_col).type))

    def run_tasks(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        return [fn(item) for item in items]
