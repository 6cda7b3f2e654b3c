"""What every engine offers. Stage code is written against this surface only."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import pyarrow as pa

from curate.stage import Stage

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class StageSpec:
    """A stage to run in workers: its class and config, and what each worker reserves."""

    stage_cls: type[Stage]
    config: Any
    num_cpus: float = 0.5  # a fraction, so actors never starve the readers on a small machine
    num_gpus: float = 0.0
    concurrency: int = 1
    batch_size: int = 256
    env: dict[str, str] = field(default_factory=dict)


class Engine(Protocol):
    """A table engine: read parquet, apply stages, group-wise ranks, and parallel tasks.

    `Frame` values are engine-specific handles (a Spark DataFrame, a pyarrow Table); only the engine
    that made one may use it.
    """

    name: str

    def read_parquet(self, paths: Sequence[str]) -> Any: ...

    def from_arrow(self, table: pa.Table) -> Any: ...

    def to_arrow(self, frame: Any) -> pa.Table: ...

    def map_batches(self, frame: Any, spec: StageSpec, output_schema: pa.Schema) -> Any: ...

    def rank_in_groups(self, frame: Any, key: str, order: Sequence[str], rank_col: str,
                       first_col: str, value_col: str) -> Any: ...

    def run_tasks(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]: ...

    def band_pairs(self, frame: Any, id_col: str, hash_col: str, bands: int, max_distance: int) -> Any:
        """Pairs of rows whose 64-bit int64 `hash_col` values are within `max_distance` bits, found by LSH
        banding: the hash is cut into `bands` contiguous bit bands (widths as equal as possible) and only
        rows sharing a band value are compared. Returns a frame (src, dst, distance) with src < dst
        (ids compared as values), each pair once. Pigeonhole: `bands >= max_distance + 1` finds every
        pair (exact recall); fewer bands trade recall for fewer candidates. Ids must be unique."""
        ...

    def connected_components(self, edges: Any, src: str, dst: str) -> Any:
        """Connected components of the undirected graph `edges`: a frame (node, component) with one row
        per node that appears in an edge, `component` being the smallest node of its component."""
        ...

    def count_where(self, frame: Any, where_null: str | None = None) -> int:
        """Rows of `frame`, or only those where column `where_null` is null (select: still kept)."""
        ...

    def kth_largest(self, frame: Any, column: str, k: int, where_null: str | None = None) -> tuple[float, str]:
        """(value, uid) of the k-th row (1-based) in the order (`column` desc, `uid` asc), null and NaN
        ranked as -inf; exact on every engine (Spark: approximate quantiles, then an exact boundary band)."""
        ...

    def value_counts(self, frame: Any, column: str, where_null: str | None = None) -> dict[Any, int]:
        """Rows per value of `column` (a list column counts each element)."""
        ...

    def smallest_rows(self, frame: Any, key: str, n: int, columns: Sequence[str],
                      where_null: str | None = None) -> pa.Table:
        """The `n` rows with the smallest (`key`, `uid`), in that order, as an Arrow table of `columns`."""
        ...

    def materialize(self, frame: Any) -> Any:
        """Compute `frame` once and keep it, so later actions do not recompute its lineage."""
        ...

    def select_columns(self, frame: Any, columns: Sequence[str]) -> Any:
        """Only `columns` of `frame`, in that order."""
        ...


def band_layout(bands: int) -> list[tuple[int, int]]:
    """(right shift, mask) of each of `bands` contiguous bit bands of a 64-bit hash, most significant first."""
    if not 1 <= bands <= 64:
        raise ValueError(f"bands must be in 1..64, got {bands}")
    widths = [64 // bands + (1 if i < 64 % bands else 0) for i in range(bands)]
    out, top = [], 64
    for w in widths:
        top -= w
        out.append((top, (1 << w) - 1))
    return out
