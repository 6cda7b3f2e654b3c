"""Datasets in storage, read and written by Spark's Python workers through fsspec (../shared/DATAPLANE.md).

The driver lists a folder once and hands Spark one row per part; the executors read the parts with pyarrow
(so `s3://` and `gs://` work without Hadoop's connectors) and write parts under deterministic names, each
atomically. What comes back to the driver is one small stats row per task.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

from curate.errors import CurateError
from curate.io import dataset, fs
from curate.io.dataset import PART_COL

log = logging.getLogger(__name__)

WRITE_STATS = pa.schema([("parts", pa.int64()), ("rows", pa.int64()), ("bytes", pa.int64())])
MAX_READ_TASKS = 20_000  # parts are grouped into at most this many read tasks (descriptors stay O(tasks))


def spark_schema(schema: pa.Schema):
    """The Spark StructType of an Arrow schema (metadata dropped, every field nullable)."""
    plain = pa.schema([pa.field(f.name, f.type, nullable=True) for f in schema])
    return from_arrow_schema(plain)


def read_dataset(session: SparkSession, paths: Sequence[str], schema: pa.Schema,
                 tasks: int | None = None) -> DataFrame:
    """The rows of parquet `paths` as a DataFrame of `schema` (a part lacking a column reads it as null,
    so datasets written by older schema versions read too). Executors read; the driver holds the paths."""
    return read_items(session, [{"path": p} for p in paths], _PartReader(schema), schema, tasks)


def read_items(session: SparkSession, items: Sequence[dict], read: Callable[[dict], pa.Table],
               schema: pa.Schema, tasks: int | None = None) -> DataFrame:
    """A DataFrame of `schema` made by `read(item)` for every item (a dict of JSON values: a shard's paths,
    say) in the executors; the items are spread over `tasks` tasks (default: one each, up to MAX_READ_TASKS)."""
    items = [json.dumps(item, sort_keys=True) for item in items]
    if not items:
        return session.createDataFrame([], spark_schema(schema))
    n = max(1, min(len(items), tasks or MAX_READ_TASKS))
    names = schema.names

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for text in batch.column(0).to_pylist():
                table = read(json.loads(text)).select(names).cast(schema)
                yield from table.to_batches(max_chunksize=65_536)

    rdd = session.sparkContext.parallelize([(t,) for t in items], n)
    return session.createDataFrame(rdd, "item string").mapInArrow(run, spark_schema(schema))


class _PartReader:
    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema

    def __call__(self, item: dict) -> pa.Table:
        return _read_part(item["path"], self.schema)


def _read_part(path: str, schema: pa.Schema) -> pa.Table:
    table = dataset.read_part(path, None)
    cols = []
    for field in schema:
        if field.name in table.column_names:
            try:
                cols.append(table.column(field.name).cast(field.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise CurateError(f"{path}: column {field.name!r} is {table.schema.field(field.name).type}, "
                                  f"not {field.type}") from exc
        else:
            cols.append(pa.chunked_array([pa.nulls(table.num_rows, field.type)]))
    return pa.Table.from_arrays(cols, names=schema.names)


def write_dataset(frame: DataFrame, folder: str, schema: str | None = None, version: int = 1,
                  sort_by: Sequence[str] = (), tasks: int = 8, partitions: int | None = None,
                  key: str | None = None) -> dict:
    """Write `frame` as parts of `folder`, each by the task that holds its rows; returns merged task stats.

    Two ways to name parts:
    - by the string column `_part` (PART_COL): one part per distinct value, `<value>.parquet`, rows
      grouped into `tasks` tasks by the value's hash; only values that occur get a part;
    - `partitions=P` with a `key` column: rows hash-partitioned by `key` into exactly P parts,
      `part-00000.parquet` ... (empty ones too, so a reader can count on all P).
    Within a part, rows are sorted by `sort_by`: the same rows give the same bytes on every run.
    The frame's columns are written (without `_part` when it names the parts), conformed to `schema` when one
    is named.
    """
    if partitions is not None:
        if key is None:
            raise ValueError("write_dataset: partitions= needs key=")
        df = frame.repartition(partitions, F.col(key)).sortWithinPartitions(*sort_by)
        by_name = False
    else:
        df = frame.repartition(tasks, F.col(PART_COL)).sortWithinPartitions(PART_COL, *sort_by)
        by_name = True
    columns = [c for c in frame.columns if c != PART_COL or not by_name]
    empty = to_arrow_schema(frame.select(*columns).schema).empty_table()
    writer = _PartWriter(folder, empty, schema, version, by_name)
    row = df.mapInArrow(writer, spark_schema(WRITE_STATS)).agg(
        *[F.coalesce(F.sum(c), F.lit(0)).alias(c) for c in WRITE_STATS.names]).first()
    return {c: int(row[c]) for c in WRITE_STATS.names}


class _PartWriter:
    """Runs in an executor: the rows of one task, sorted by part, become one file per part."""

    def __init__(self, folder: str, empty: pa.Table, schema: str | None, version: int, by_name: bool) -> None:
        self.folder, self.empty, self.schema, self.version, self.by_name = folder, empty, schema, version, by_name
        self.columns = empty.column_names

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        stats = {"parts": 0, "rows": 0, "bytes": 0}
        if self.by_name:
            current, pending = None, []
            for batch in batches:
                table = pa.Table.from_batches([batch])
                for name, piece in _runs(table):
                    if name != current and pending:
                        self._flush(current, pending, stats)
                        pending = []
                    current = name
                    pending.append(piece.drop_columns([PART_COL]))
            if pending:
                self._flush(current, pending, stats)
        else:
            from pyspark import TaskContext

            pieces = [pa.Table.from_batches([b]) for b in batches]
            self._flush(dataset.part_name(TaskContext.get().partitionId()).removesuffix(dataset.SUFFIX),
                        pieces, stats, empty_ok=True)
        yield pa.RecordBatch.from_pylist([stats], schema=WRITE_STATS)

    def _flush(self, name: str, pieces: list[pa.Table], stats: dict, empty_ok: bool = False) -> None:
        if pieces:
            table = pa.concat_tables(pieces).select(self.columns).combine_chunks()
        elif empty_ok:  # an empty partition: its part still exists, with the schema only
            table = self.empty
        else:
            return
        path = fs.join(self.folder, name + dataset.SUFFIX)
        stats["bytes"] += dataset.write_part(table, path, self.schema, self.version)
        stats["parts"] += 1
        stats["rows"] += table.num_rows


def _runs(table: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    """Consecutive runs of equal `_part` values in a sorted table: (value, rows)."""
    import numpy as np

    parts = table.column(PART_COL).to_numpy(zero_copy_only=False)
    if len(parts) == 0:
        return
    starts = np.flatnonzero(np.concatenate([[True], parts[1:] != parts[:-1]]))
    ends = np.append(starts[1:], len(parts))
    for s, e in zip(starts, ends, strict=True):
        yield str(parts[s]), table.slice(int(s), int(e - s))
