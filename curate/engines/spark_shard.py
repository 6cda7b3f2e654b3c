"""The shard program (`curate.shard.program`, `curate.shard.execute`) on Spark: batch functions run in
`mapInArrow`, reductions are `groupBy` aggregations, the move of rows to output blocks is Spark's shuffle
(`repartition` by block, then `sortWithinPartitions`), and each block's task writes its own tars, manifest
part and stats. The candidates are read once by the executors and kept on their disks (DISK_ONLY) for the
plan's counting passes. What reaches the driver: reductions (one row per count, bucket or digit), the
exact cut's band, one stats row per output tar."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence

import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from curate.engines.sparkio import spark_schema
from curate.errors import CurateError
from curate.shard.frames import MAXS, MINS, PARTIAL, SUMS, group_runs

log = logging.getLogger(__name__)

GROUPS_PER_TASK = 16  # output blocks a shuffle task writes, at least (a Python task costs ~50 ms to start)


class _Batches:
    def __init__(self, fn: Callable[[pa.Table], pa.Table], schema: pa.Schema) -> None:
        self.fn, self.schema = fn, schema

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield from self.fn(pa.Table.from_batches([batch])).select(self.schema.names).cast(self.schema).to_batches()


class _Groups:
    """Runs in a task: its rows, sorted by `key`, handed to `fn` one whole group at a time."""

    def __init__(self, fn: Callable[[pa.Table], pa.Table], key: str, schema: pa.Schema) -> None:
        self.fn, self.key, self.schema = fn, key, schema

    def _out(self, pending: list[pa.Table]) -> list[pa.RecordBatch]:
        return self.fn(pa.concat_tables(pending)).select(self.schema.names).cast(self.schema).to_batches()

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        current, pending = None, []
        for batch in batches:
            table = pa.Table.from_batches([batch])
            for piece in group_runs(table, self.key, lambda t: t):
                value = piece.column(self.key)[0].as_py()
                if value != current and pending:
                    yield from self._out(pending)
                    pending = []
                current = value
                pending.append(piece)
        if pending:
            yield from self._out(pending)


class SparkFrames:
    name = "spark"

    def __init__(self, engine) -> None:
        self.engine = engine

    def _action(self, run: Callable[[], pa.Table]) -> pa.Table:
        from curate.engines.spark import task_error

        try:
            return run()
        except CurateError:
            raise
        except Exception as exc:  # Py4JJavaError, PythonException: what the task raised, in one line
            raise task_error(exc) from exc

    def read(self, items: Sequence[dict], fn, schema: pa.Schema) -> DataFrame:
        return self.engine.read_items(list(items), fn, schema)

    def map(self, frame: DataFrame, fn, schema: pa.Schema, columns: Sequence[str] | None = None) -> DataFrame:
        df = frame.select(*columns) if columns else frame
        return df.mapInArrow(_Batches(fn, schema), spark_schema(schema))

    def reduce(self, frame: DataFrame, fn, columns: Sequence[str] | None = None) -> pa.Table:
        df = self.map(frame, fn, PARTIAL, columns)
        aggs = ([F.sum(c).alias(c) for c in SUMS] + [F.min(c).alias(c) for c in MINS]
                + [F.max(c).alias(c) for c in MAXS])
        out = self._action(lambda: df.groupBy("kind", "key").agg(*aggs).toArrow())
        return out.select(PARTIAL.names).cast(PARTIAL).sort_by([("kind", "ascending"), ("key", "ascending")])

    def collect(self, frame: DataFrame, fn, schema: pa.Schema, columns: Sequence[str] | None = None) -> pa.Table:
        df = self.map(frame, fn, schema, columns)
        return self._action(lambda: df.toArrow()).select(schema.names).cast(schema)

    def groups(self, frame: DataFrame, key: str, fn, schema: pa.Schema, groups: int) -> DataFrame:
        parallelism = self.engine.session.sparkContext.defaultParallelism
        tasks = max(1, min(groups, max(2 * parallelism, -(-groups // GROUPS_PER_TASK))))
        df = frame.repartition(tasks, F.col(key)).sortWithinPartitions(key)
        return df.mapInArrow(_Groups(fn, key, schema), spark_schema(schema))

    def gather(self, frame: DataFrame, schema: pa.Schema) -> pa.Table:
        return self._action(lambda: frame.toArrow()).select(schema.names).cast(schema)

    def left_join(self, frame: DataFrame, other: DataFrame, on: str, schema: pa.Schema) -> DataFrame:
        return frame.join(other, on, "left").select(*schema.names)

    def persist(self, frame: DataFrame) -> DataFrame:
        return frame.persist(StorageLevel.DISK_ONLY)

    def release(self, frame: DataFrame) -> None:
        frame.unpersist()

    def tasks(self, fn, items: Sequence) -> list:
        return self.engine.run_tasks(fn, items)
