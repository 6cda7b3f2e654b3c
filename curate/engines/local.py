"""The in-process engine: pyarrow tables in this process. The reference the others must agree with."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.engines.base import StageSpec
from curate.errors import named
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

        items, fn = list(items), named(fn)  # a failure names its item, as on the engines
        with Progress("local tasks", len(items), "tasks") as progress:
            out = []
            for item in items:
                out.append(fn(item))
                progress.update()
        return out

    def read_items(self, items: Sequence[dict], read: Callable[[dict], pa.Table], schema: pa.Schema,
                   tasks: int | None = None) -> pa.Table:
        """`read(item)` for every item, in this process, as one table of `schema` (demo-size inputs)."""
        read = named(read)
        tables = [read(item).select(schema.names).cast(schema) for item in items]
        return pa.concat_tables(tables) if tables else schema.empty_table()

    def read_dataset(self, folder: str | Sequence[str], schema: pa.Schema, tasks: int | None = None) -> pa.Table:
        from curate.io import dataset

        paths = dataset.part_paths(folder) if isinstance(folder, str) else list(folder)
        return self.read_items([{"path": p} for p in paths], _PartReader(schema), schema)

    def write_dataset(self, frame: pa.Table, folder: str, schema: str | None = None, version: int = 1,
                      sort_by: Sequence[str] = (), tasks: int = 8, partitions: int | None = None,
                      key: str | None = None, by_range: bool = False) -> dict:
        """The parts Spark's `write_dataset` writes, named by `_part` (the same bytes: tests prove it), or
        `partitions` ranges of `key` (by_range; hash partitions are Spark's own and not offered here)."""
        from curate.io import dataset
        from curate.io.dataset import PART_COL

        stats = {"parts": 0, "rows": 0, "bytes": 0}
        if partitions is not None:
            if not by_range or key is None:
                raise ValueError("LocalEngine.write_dataset: only ranges of a key (by_range) are stated partitions")
            table = frame.sort_by([(c, "ascending") for c in (key, *sort_by)])
            bounds = np.linspace(0, table.num_rows, partitions + 1).astype(int)
            pieces = [(dataset.part_name(i), table.slice(int(a), int(b - a)))
                      for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))]
        else:
            names = pc.unique(frame.column(PART_COL)).sort().to_pylist()
            pieces = [(name + dataset.SUFFIX, frame.filter(pc.equal(frame.column(PART_COL), name)).drop_columns(
                [PART_COL]).sort_by([(c, "ascending") for c in sort_by])) for name in names]
        for name, piece in pieces:
            stats["bytes"] += dataset.write_part(piece, fs.join(folder, name), schema, version)
            stats["parts"] += 1
            stats["rows"] += piece.num_rows
        return stats

    def map_groups(self, frame: pa.Table, key: str, fn: Callable[[pa.Table], pa.Table],
                   schema: pa.Schema) -> pa.Table:
        """`fn(rows of one group)` over every group of `key` (nulls one group), rows back in their order."""
        if frame.num_rows == 0:
            return schema.empty_table()
        order = "_group_order"
        table = frame.append_column(order, pa.array(np.arange(frame.num_rows)))
        table = table.take(pc.sort_indices(table, [(key, "ascending"), (order, "ascending")]))
        keys = table.column(key).to_numpy(zero_copy_only=False)
        starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
        ends = np.append(starts[1:], len(keys))
        out = pa.concat_tables([fn(table.slice(int(s), int(e - s))) for s, e in zip(starts, ends, strict=True)])
        out = out.take(pc.sort_indices(out, [(order, "ascending")]))
        return out.select(schema.names).cast(schema)

    def for_each(self, fn: Callable[[T], dict], items: Iterable[T], per_task: int = 1) -> dict:
        """`fn(item)` for every item in this process, stats dicts merged (what the engines' for_each do)."""
        from curate.io.dataset import merge_stats

        return merge_stats(self.run_tasks(fn, items))

    @staticmethod
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


class _PartReader:
    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema

    def __call__(self, item: dict) -> pa.Table:
        from curate.io import dataset

        table = dataset.read_part(item["path"], [n for n in self.schema.names], only_present=True)
        for f in self.schema:
            if f.name not in table.column_names:
                table = table.append_column(f.name, pa.nulls(table.num_rows, f.type))
        return table
