"""The in-process engine: pyarrow tables in this process. The reference the others must agree with."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.engines.base import StageSpec, band_layout
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

    def band_pairs(self, frame: pa.Table, id_col: str, hash_col: str, bands: int,
                   max_distance: int) -> pa.Table:
        """LSH banding with numpy: per band, sort by band value and pair rows in equal runs."""
        out_schema = pa.schema([("src", frame.schema.field(id_col).type),
                                ("dst", frame.schema.field(id_col).type), ("distance", pa.int32())])
        if frame.num_rows < 2:
            return out_schema.empty_table()
        frame = frame.sort_by([(id_col, "ascending")])  # row index order == id order: src = lower index
        ids = frame.column(id_col)
        h = frame.column(hash_col).to_numpy().astype(np.int64).view(np.uint64)
        layout = band_layout(bands)
        lo_parts, hi_parts = [], []
        for b, (shift, mask) in enumerate(layout):
            v = (h >> np.uint64(shift)) & np.uint64(mask)
            order = np.argsort(v, kind="stable")
            sv = v[order]
            for off in range(1, len(sv)):
                same = sv[off:] == sv[:-off]
                if not same.any():
                    break
                a, c = order[:-off][same], order[off:][same]
                lo, hi = np.minimum(a, c), np.maximum(a, c)
                x = h[lo] ^ h[hi]
                keep = np.bitwise_count(x) <= max_distance
                for shift0, mask0 in layout[:b]:  # counted in an earlier band already
                    keep &= ((x >> np.uint64(shift0)) & np.uint64(mask0)) != 0
                lo_parts.append(lo[keep])
                hi_parts.append(hi[keep])
        if not lo_parts:
            return out_schema.empty_table()
        lo, hi = np.concatenate(lo_parts), np.concatenate(hi_parts)
        dist = np.bitwise_count(h[lo] ^ h[hi]).astype(np.int32)
        return pa.table([ids.take(pa.array(lo)), ids.take(pa.array(hi)), pa.array(dist, pa.int32())],
                        schema=out_schema)

    def connected_components(self, edges: pa.Table, src: str, dst: str) -> pa.Table:
        """Union of the edge endpoints, components by scipy's graph search, labelled by their smallest node."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        typ = edges.schema.field(src).type
        out_schema = pa.schema([("node", typ), ("component", typ)])
        if edges.num_rows == 0:
            return out_schema.empty_table()
        both = pa.concat_arrays([edges.column(src).combine_chunks(), edges.column(dst).combine_chunks()])
        nodes = pc.unique(both).sort()
        idx = pc.index_in(both, value_set=nodes).to_numpy()
        n, m = len(nodes), edges.num_rows
        graph = coo_matrix((np.ones(m, dtype=np.int8), (idx[:m], idx[m:])), shape=(n, n))
        _, label = connected_components(graph, directed=False)
        smallest = np.full(label.max() + 1, n, dtype=np.int64)
        np.minimum.at(smallest, label, np.arange(n))  # nodes are sorted: smallest index = smallest node
        return pa.table([nodes, nodes.take(pa.array(smallest[label]))], schema=out_schema)

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
