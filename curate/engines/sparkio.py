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
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

from curate.errors import CurateError, named
from curate.io import dataset, fs, sums
from curate.io.dataset import PART_COL

log = logging.getLogger(__name__)

WRITE_STATS = pa.schema([("parts", pa.int64()), ("rows", pa.int64()), ("bytes", pa.int64())])
MAX_READ_TASKS = 20_000  # parts are grouped into at most this many read tasks (descriptors stay O(tasks))
READ_ITEMS_PER_TASK = 32


def read_tasks(items: int, parallelism: int) -> int:
    """Tasks to read `items` parts: two per core at least, else about READ_ITEMS_PER_TASK parts each, at
    most MAX_READ_TASKS. A Python task costs tens of milliseconds to start, so one per small part (a
    10,000-row shard) would spend most of the read starting tasks."""
    return max(1, min(items, MAX_READ_TASKS, max(2 * parallelism, -(-items // READ_ITEMS_PER_TASK))))


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
    say) in the executors; the items are spread over `tasks` tasks (default: `read_tasks`)."""
    items = [json.dumps(item, sort_keys=True) for item in items]
    if not items:
        return session.createDataFrame([], spark_schema(schema))
    n = tasks or read_tasks(len(items), session.sparkContext.defaultParallelism)
    names, read = schema.names, named(read)  # a failed read names its item (a part, a shard's tar)

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
                  key: str | None = None, by_range: bool = False) -> dict:
    """Write `frame` as parts of `folder`, each by the task that holds its rows; returns merged task stats.

    Two ways to name parts:
    - by the string column `_part` (PART_COL): one part per distinct value, `<value>.parquet`, rows
      grouped into `tasks` tasks by the value's hash; only values that occur get a part;
    - `partitions=P` with a `key` column: rows hash-partitioned by `key` into exactly P parts,
      `part-00000.parquet` ... (empty ones too, so a reader can count on all P); with `by_range`, ranges
      of `key` instead, in order: part i's keys all sort before part i + 1's (a globally sorted dataset).
    Within a part, rows are sorted by `sort_by`: the same rows give the same bytes on every run.
    The frame's columns are written (without `_part` when it names the parts), conformed to `schema` when one
    is named.
    """
    if partitions is not None:
        if key is None:
            raise ValueError("write_dataset: partitions= needs key=")
        split = frame.repartitionByRange if by_range else frame.repartition
        df = split(partitions, F.col(key)).sortWithinPartitions(*sort_by)
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
            self._stream(batches, stats)
        yield pa.RecordBatch.from_pylist([stats], schema=WRITE_STATS)

    def _stream(self, batches: Iterator[pa.RecordBatch], stats: dict) -> None:
        """A stated partition, however large, written batch by batch (a row group each): memory stays one
        batch. Its bytes follow Spark's batching, which is fine for what it is used for (work folders)."""
        from pyspark import TaskContext

        from curate import schemas

        target = schemas.load(self.schema, self.version) if self.schema else self.empty.schema
        path = fs.join(self.folder, dataset.part_name(TaskContext.get().partitionId()))
        rows = 0
        with sums.open_part(path) as fh:  # hashed as written, for its checksum sidecar
            with pq.ParquetWriter(fh, target, compression="zstd", write_page_checksum=True) as writer:
                for batch in batches:
                    table = pa.Table.from_batches([batch]).select(self.columns)
                    if self.schema:
                        table = schemas.conform(table, self.schema, self.version)
                    writer.write_table(table)
                    rows += table.num_rows
        stats["bytes"] += fh.size
        stats["parts"] += 1
        stats["rows"] += rows

    def _flush(self, name: str, pieces: list[pa.Table], stats: dict) -> None:
        table = pa.concat_tables(pieces).select(self.columns).combine_chunks()
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
