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
