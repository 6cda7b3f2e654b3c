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

    def run_tasks(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        from curate.progress import Progress

        items = list(items)
        with Progress("local tasks", len(items), "tasks") as progress:
            out = []
            for item in items:
                out.append(fn(item))
                progress.update()
        return out

    def for_each(self, fn: Callable[[T], dict], items: Iterable[T], per_task: int = 1) -> dict:
        """`fn(item)` for every item in this process, stats dicts merged (what the engines' for_each do)."""
        from curate.io.dataset import merge_stats

        return merge_stats(self.run_tasks(fn, items))

    def _kept(frame: pa.Table, where_null: str | None) -> pa.Table:
        return frame if where_null is None else frame.filter(pc.is_null(frame.column(where_null)))

    def count_where(self, frame: pa.Table, where_null: str | None = None) -> int:
        return frame.num_rows if where_null is None else frame.column(where_null).null_count

    def kth_largest(self, frame: pa.Table, column: str, k: int, where_null: str | None = None) -> tuple[float, str]:
        """A full sort by (value desc, uid asc): the reference the Spark engine's banded search must match."""
        frame = self._kept(frame, where_null)
        if not 1 <= k <= frame.num_rows:
            raise ValueError(f"kth_largest: k={k} outside 1..{frame.num_rows}")
        s = np.asarray(frame.column(column).to_numpy(zero_copy_only=False), dtype=np.float64)
        s = np.where(np.isnan(s), -np.inf, s)
        uids = np.array(frame.column("uid").to_pylist(), dtype=str)
        i = np.lexsort((uids, -s))[k - 1]
        return float(s[i]), str(uids[i])

    def value_counts(self, frame: pa.Table, column: str, where_null: str | None = None) -> dict:
        col = self._kept(frame, where_null).column(column).combine_chunks()
        if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
            col = col.flatten()
        return {item["values"]: item["counts"] for item in pc.value_counts(col).to_pylist()}

    def smallest_rows(self, frame: pa.Table, key: str, n: int, columns: Sequence[str],
                      where_null: str | None = None) -> pa.Table:
        frame = self._kept(frame, where_null).sort_by([(key, "ascending"), ("uid", "ascending")])
        return frame.slice(0, n).select(list(columns))

    def materialize(self, frame: pa.Table) -> pa.Table:
        return frame

    def select_columns(self, frame: pa.Table, columns: Sequence[str]) -> pa.Table:
        return frame.select(list(columns))
