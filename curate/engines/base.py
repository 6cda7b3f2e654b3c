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

    def run_tasks(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]: ...

    def for_each(self, fn: Callable[[T], dict], items: Iterable[T], per_task: int = 1) -> dict:
        """`fn(item)` for every item in the workers, `per_task` items to a task; each returns a small stats
        dict (numbers and nested dicts), merged in the tasks and then on the driver (`io.dataset.merge_stats`).
        A failed task is retried by the engine; one that still fails is a one-line CurateError."""
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
