"""Datasets read and written by Spark's Python workers: part names, sort order, bytes, empty partitions,
task retries and one-line task errors."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.engines.spark import with_retries
from curate.errors import CurateError
from curate.io import dataset

pytestmark = pytest.mark.spark


def _frame(spark_engine, n: int):
    from pyspark.sql import functions as F

    return spark_engine.session.range(n).select(
        F.col("id"), F.format_string("%05d", F.col("id") % 7).alias("_part"),
        F.sha2(F.col("id").cast("string"), 256).alias("h"))


def test_parts_named_by_column_sorted_and_deterministic(spark_engine, tmp_path):
    stats = spark_engine.write_dataset(_frame(spark_engine, 1000), str(tmp_path / "a"), sort_by=["h"], tasks=3)
    assert stats["parts"] == 7 and stats["rows"] == 1000
    parts = dataset.list_parts(str(tmp_path / "a"))
    assert list(parts) == [f"{i:05d}.parquet" for i in range(7)] and sum(parts.values()) == stats["bytes"]
    t = pq.read_table(tmp_path / "a" / "00003.parquet")
    assert t.column_names == ["id", "h"]
    assert sorted(t.column("id").to_pylist()) == list(range(3, 1000, 7))
    assert t.column("h").to_pylist() == sorted(t.column("h").to_pylist())
    # another partitioning of the same rows into tasks gives the same files, byte for byte
    spark_engine.write_dataset(_frame(spark_engine, 1000).repartition(5), str(tmp_path / "b"), sort_by=["h"],
                               tasks=2)
    for name in parts:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_stated_partitions_are_all_written_and_read_back(spark_engine, tmp_path):
    schema = pa.schema([("id", pa.int64()), ("h", pa.string()), ("absent", pa.string())])
    spark_engine.write_dataset(_frame(spark_engine, 3), str(tmp_path / "p"), partitions=6, key="id",
                               sort_by=["id"])
    assert list(dataset.list_parts(str(tmp_path / "p"))) == [dataset.part_name(i) for i in range(6)]
    back = spark_engine.read_dataset(str(tmp_path / "p"), schema)
    rows = sorted(back.collect())
    assert [r["id"] for r in rows] == [0, 1, 2] and all(r["absent"] is None for r in rows)
    assert spark_engine.read_dataset(str(tmp_path / "nothing"), schema).count() == 0


def test_for_each_merges_stats_and_failures_are_one_line(spark_engine):
    assert spark_engine.for_each(lambda x: {"n": x, "k": {"a": 1}}, range(10), per_task=3) == {
        "n": 45, "k": {"a": 10}}
    with pytest.raises(CurateError) as exc:
        spark_engine.for_each(_fail, [1, 2])
    assert str(exc.value) == "shard 1 cannot be read" or str(exc.value) == "shard 2 cannot be read"


def _fail(x: int) -> dict:
    raise CurateError(f"shard {x} cannot be read")


def test_local_masters_retry_failed_tasks():
    assert with_retries("local[2]", {}) == "local[2,4]"
    assert with_retries("local[*]", {"spark.task.maxFailures": "2"}) == "local[*,2]"
    assert with_retries("spark://h:7077", {}) == "spark://h:7077"


class _FailsOnce:
    """Raises the first time it sees an item (a marker file remembers), then succeeds: a flaky worker."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def __call__(self, x: int) -> dict:
        import os

        marker = os.path.join(self.folder, f"seen-{x}")
        if not os.path.exists(marker):
            open(marker, "w").close()
            raise OSError(f"transient failure on {x}")
        return {"done": 1}


def test_a_failed_task_is_retried_by_spark(spark_engine, tmp_path):
    assert spark_engine.for_each(_FailsOnce(str(tmp_path)), [1, 2, 3]) == {"done": 3}
