"""Download planning on Spark (see `curate.download.plan`): every row is read, numbered, given its uid and
written by the executors; the driver sees one row per input file (its row count) and a few scalars."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from curate.download.config import DownloadConfig
from curate.download.inputs import FILE, ROW, ROWS_SCHEMA, UID_PATTERN, URLS_VERSION, InputFile, file_rows
from curate.download.plan import shard_tasks
from curate.engines.sparkio import spark_schema
from curate.errors import CurateError
from curate.io.dataset import PART_COL

log = logging.getLogger(__name__)
POS = "_pos"


class _ReadFiles:
    """mapInArrow: (file index, path, size) rows in, that file's rows out."""

    def __init__(self, config: DownloadConfig) -> None:
        self.config = config

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for d in batch.to_pylist():
                yield from file_rows(self.config, InputFile(d["index"], d["path"], d["size"])).to_batches(65_536)


def read_rows(engine, config: DownloadConfig, files: list[InputFile]) -> DataFrame:
    """The input's rows (ROWS_SCHEMA), one read task per file."""
    session = engine.session
    desc = [(f.index, f.path, f.size) for f in files]
    rdd = session.sparkContext.parallelize(desc, max(1, len(desc)))
    return (session.createDataFrame(rdd, "index int, path string, size long")
            .mapInArrow(_ReadFiles(config), spark_schema(ROWS_SCHEMA)))


def _offsets(engine, rows: DataFrame, given: bool, where: str) -> tuple[DataFrame, int]:
    """(file, first position) of every file, and the row total; bad given uids are a one-line error."""
    bad = (F.col("uid").isNull() | ~F.col("uid").rlike(UID_PATTERN)).cast("long")
    counts = rows.groupBy(FILE).agg(F.count(F.lit(1)).alias("n"), F.sum(bad).alias("bad")).collect()
    if given and sum(r["bad"] for r in counts):
        example = rows.where(bad == 1).select("uid").limit(1).collect()[0]["uid"]
        raise CurateError(f"{where}: uid {example!r} is not 32 lowercase hex characters")
    start, table = 0, []
    for r in sorted(counts, key=lambda r: r[FILE]):
        table.append((r[FILE], start))
        start += r["n"]
    return engine.session.createDataFrame(table, f"{FILE} int, _start long"), start


def _derived_uid() -> F.Column:
    """sha256 of url, NUL, caption (null as empty), and for the n-th repeat of a (url, caption) pair in input
    order, NUL and n: the first 128 bits in hex (inputs.derive_uids, row for row)."""
    text = F.concat(F.col("url"), F.lit("\x00"), F.coalesce(F.col("caption"), F.lit("")))
    n = F.row_number().over(Window.partitionBy("url", "caption").orderBy(POS)) - 1
    return F.substring(F.sha2(F.when(n == 0, text).otherwise(F.concat(text, F.lit("\x00"), n.cast("string"))),
                              256), 1, 32)


def plan_on_spark(engine, config: DownloadConfig, files: list[InputFile], given: bool, urls_dir: str) -> int:
    """Write `urls_dir/NNNNN.parquet` for every shard of the input; returns the row count."""
    rows = read_rows(engine, config, files)
    offsets, total = _offsets(engine, rows, given, config.input)
    if total == 0:
        return 0
    rows = rows.join(F.broadcast(offsets), FILE).withColumn(POS, F.col("_start") + F.col(ROW))
    if not given:
        rows = rows.withColumn("uid", _derived_uid())
    repeats = (rows.groupBy("uid").count().where(F.col("count") > 1)
               .agg(F.coalesce(F.sum(F.col("count") - 1), F.lit(0)).alias("extra")).first()["extra"])
    if repeats:
        raise CurateError(f"{config.input}: uids are not unique ({repeats} repeats)")
    n_shards = -(-total // config.shard_size)
    shard = F.floor(F.col(POS) / F.lit(config.shard_size)).cast("long")
    frame = rows.withColumn(PART_COL, F.format_string("%05d", shard))
    stats = engine.write_dataset(frame, urls_dir, schema="urls", version=URLS_VERSION, sort_by=[POS],
                                 tasks=shard_tasks(n_shards, engine.session.sparkContext.defaultParallelism))
    if stats["rows"] != total or stats["parts"] != n_shards:
        raise CurateError(f"download: planned {total} rows in {n_shards} shards but wrote {stats['rows']} in "
                          f"{stats['parts']}; remove {urls_dir} and rerun")
    log.info("download: %d rows planned into %d shards", total, n_shards)
    return total
