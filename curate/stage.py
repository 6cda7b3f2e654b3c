"""The stage contract: typed frozen config, setup, process_batch(table) -> table, teardown.

A stage never imports an engine. Engines (curate/engines/) build a stage from its class and config
inside whatever process runs it (a Spark executor, a Ray actor, this process), call `setup()` once,
feed it Arrow batches, and call `teardown()`. A stage that rejects rows writes why in `reason`;
counting rows and reasons is done here, not in each stage.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import CurateError, cause_text

C = TypeVar("C")

REASON = "reason"


@dataclass
class StageStats:
    """Rows in, rows kept and rejections by reason: the funnel entry of one stage."""

    rows_in: int = 0
    kept: int = 0
    rejected: Counter = field(default_factory=Counter)

    def add_table(self, table: pa.Table, reason_col: str = REASON) -> None:
        self.rows_in += table.num_rows
        if reason_col not in table.column_names:
            self.kept += table.num_rows
            return
        col = table.column(reason_col)
        self.kept += col.null_count
        for item in pc.value_counts(pc.drop_null(col)).to_pylist():
            self.rejected[item["values"]] += item["counts"]

    def merge(self, other: StageStats) -> None:
        self.rows_in += other.rows_in
        self.kept += other.kept
        self.rejected.update(other.rejected)

    def to_dict(self) -> dict[str, Any]:
        return {"rows_in": self.rows_in, "kept": self.kept, "rejected": dict(sorted(self.rejected.items()))}

    @classmethod
    def from_table(cls, table: pa.Table, reason_col: str = REASON) -> StageStats:
        stats = cls()
        stats.add_table(table, reason_col)
        return stats


class Stage(ABC, Generic[C]):
    """A batch transformation with a lifecycle. Subclasses declare the columns they read and add."""

    name: ClassVar[str]
    reads: ClassVar[tuple[str, ...]] = ()
    adds: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: C) -> None:
        self.config = config
        self.stats = StageStats()

    def setup(self) -> None:
        """Load models or open resources, once per worker."""

    @abstractmethod
    def process_batch(self, table: pa.Table) -> pa.Table:
        """Return `table` with the `adds` columns (and a `reason` column if the stage rejects rows)."""

    def teardown(self) -> None:
        """Release what setup() took."""

    def __call__(self, table: pa.Table) -> pa.Table:
        missing = [c for c in self.reads if c not in table.column_names]
        if missing:
            raise CurateError(f"stage {self.name}: input lacks columns {missing}")
        try:
            out = self.process_batch(table)
        except CurateError:
            raise
        except Exception as exc:  # in a Spark or Ray worker: which stage, which rows, what went wrong, in one line
            first = table.column("uid")[0].as_py() if "uid" in table.column_names and table.num_rows else None
            rows = f"a batch of {table.num_rows} rows" + (f" from uid {first}" if first is not None else "")
            raise CurateError(f"stage {self.name}: {rows}: {cause_text(exc)}") from exc
        absent = [c for c in self.adds if c not in out.column_names]
        if absent:
            raise RuntimeError(f"stage {self.name} did not add {absent}")
        self.stats.add_table(out)
        return out


def build(stage_cls: type[Stage[C]], config: C) -> Stage[C]:
    """Instantiate and set up a stage (what every engine does in each worker)."""
    stage = stage_cls(config)
    stage.setup()
    return stage
